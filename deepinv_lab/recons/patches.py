"""Patch-wise reconstruction: a Recon run on overlapping patches of the measurements, each with
its System restricted to the patch (:meth:`~deepinv_lab.systems.base.System.patch`), the
reconstructions blended into one image (:func:`~deepinv_lab.functional.patches.
sliding_window_regions`). For volumes and images too large for the memory at hand."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from deepinv_lab.functional.patches import sliding_window_regions
from deepinv_lab.recons.base import Recon
from deepinv_lab.systems.base import System


def system_scale(system: System) -> int:
    """Output pixels per measurement pixel of a local System: its integer ``factor`` (a
    :class:`~deepinv_lab.systems.downsampling.Downsampling`, super-resolution), else 1."""
    factor = getattr(system, "factor", None)
    return factor if isinstance(factor, int) and not isinstance(factor, bool) else 1


def patch_recon(
    recon: Recon,
    y: torch.Tensor,
    system: System,
    patch_size: int | Sequence[int],
    overlap: int | Sequence[int],
    blending: str = "gaussian",
    margin: int | Sequence[int] = 0,
    scale: int | None = None,
) -> torch.Tensor:
    """``recon(y, system)`` computed patch by patch: ``recon(y[region], system.patch(region))``
    for every patch ``region`` of the measurements, blended.

    Args:
        recon: any Recon whose output at a pixel depends on nearby measurements only (a
            denoiser, a super-resolution network, a local inpainting network).
        y: image measurements ``(B, C, H, W)`` or ``(B, C, D, H, W)``.
        system: their System; it must be local (``system.patch(region)`` raises a
            :class:`~deepinv_lab.errors.UserError` for Systems such as MRI that are not).
        patch_size, overlap, blending, margin: as
            :func:`~deepinv_lab.functional.patches.sliding_window`, in measurement pixels.
        scale: reconstruction pixels per measurement pixel; ``None`` takes the System's
            (:func:`system_scale`: the ``factor`` of a downsampling System, else 1).

    Returns:
        ``(B, C_out, *(spatial * scale))``.
    """
    scale = system_scale(system) if scale is None else scale

    def reconstruct(patch: torch.Tensor, region: tuple[slice, ...]) -> torch.Tensor:
        return recon(patch, system.patch(region))

    return sliding_window_regions(reconstruct, y, patch_size, overlap, blending, scale, margin)
