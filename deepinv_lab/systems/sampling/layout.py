"""From the fastMRI layout that mask functions return to the project's: one sample's mask
``(1, H or 1, W)``, which broadcasts against complex k-space ``(coils, H, W)``, and a batch of
them ``(B, 1, H or 1, W)``, which the MRI Systems take; for volumes, the ky-kz mask
``(1, 1, Y or 1, Z)`` (:func:`to_kykz_mask`)."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

import torch

from deepinv_lab.errors import UserError
from deepinv_lab.systems.sampling.base import MaskFunction, Seed


def to_column_mask(mask: torch.Tensor) -> torch.Tensor:
    """fastMRI mask ``(1, ..., 1, W, 1)`` -> column mask ``(1, 1, W)``.

    The result broadcasts against one sample's complex k-space ``(coils, H, W)``; a batch of them
    collates to ``(B, 1, 1, W)``, the layout :class:`~deepinv_lab.systems.mri.KSpaceMask` expects.
    """
    if mask.ndim < 2 or mask.shape[-1] != 1 or mask.numel() != mask.shape[-2]:
        raise ValueError(
            "to_column_mask expects a fastMRI mask of shape (1, ..., 1, W, 1), "
            f"got {tuple(mask.shape)}"
        )
    return mask.reshape(1, 1, mask.shape[-2])


def to_kspace_mask(mask: torch.Tensor) -> torch.Tensor:
    """fastMRI-layout mask ``(1, ..., 1, H', W, 1)`` -> ``(1, H', W)``, ``H'`` being ``H`` or 1.

    Column masks (:class:`~deepinv_lab.systems.sampling.columns.MaskFunc`, ``H' = 1``) become
    ``(1, 1, W)`` as with :func:`to_column_mask`; 2D masks
    (:class:`~deepinv_lab.systems.sampling.masks2d.MaskFunc2D`) become ``(1, H, W)``. Either
    broadcasts against one sample's complex k-space ``(coils, H, W)``.
    """
    if mask.ndim < 3 or mask.shape[-1] != 1 or mask.numel() != mask.shape[-3] * mask.shape[-2]:
        raise ValueError(
            "to_kspace_mask expects a fastMRI-layout mask of shape (1, ..., 1, H or 1, W, 1), "
            f"got {tuple(mask.shape)}"
        )
    return mask.reshape(1, mask.shape[-3], mask.shape[-2])


def to_kykz_mask(mask: torch.Tensor) -> torch.Tensor:
    """fastMRI-layout mask ``(1, ..., 1, Y', Z, 1)`` -> ky-kz mask ``(1, 1, Y', Z)`` of a volume,
    ``Y'`` being ``Y`` or 1.

    A 2D mask function called with a volume's k-space shape ``(coils, X, Y, Z, 2)`` draws the
    ``(Y, Z)`` phase-encode plane, calibration block included; the result broadcasts against one
    sample's complex k-space ``(coils, X, Y, Z)`` (constant along the readout ``X``), and a batch
    of them collates to the ``(B, 1, 1, Y, Z)`` that
    :class:`~deepinv_lab.systems.mri3d.MultiCoilMRI3D` takes.
    """
    return to_kspace_mask(mask).unsqueeze(0)


def batch_masks(
    mask_func: MaskFunction,
    batch_size: int,
    shape: Sequence[int],
    seeds: Sequence[Seed] | int | None = None,
) -> torch.Tensor:
    """Per-sample masks of a batch, stacked: ``(B, 1, H, W)`` (2D) or ``(B, 1, 1, W)`` (columns).

    Args:
        mask_func: any mask function of :mod:`deepinv_lab.systems.sampling` (fastMRI column masks
            or 2D masks).
        batch_size: ``B``.
        shape: k-space size ``(H, W)``; the function is called with ``(1, H, W, 2)``.
        seeds: one seed per sample; an integer ``s`` stands for ``[(s, 0), ..., (s, B - 1)]``;
            ``None`` lets the function's own generator advance (reproducible given its seed).

    Returns:
        float32 masks whose samples differ (drawn independently), ready for
        :class:`~deepinv_lab.systems.mri.MultiCoilMRI` or
        :class:`~deepinv_lab.systems.mri.SingleCoilMRI`.
    """
    if not isinstance(batch_size, Integral) or batch_size < 1:
        raise UserError(f"batch_masks: batch_size must be an integer >= 1, got {batch_size!r}")
    if len(shape) != 2:
        raise UserError(f"batch_masks: shape must be the k-space size (H, W), got {tuple(shape)}")
    if seeds is None:
        seeds = [None] * batch_size
    elif isinstance(seeds, Integral):
        seeds = [(int(seeds), index) for index in range(batch_size)]
    elif len(seeds) != batch_size:
        raise UserError(
            f"batch_masks: expected {batch_size} seeds (one per sample), got {len(seeds)}"
        )
    masks = [to_kspace_mask(mask_func((1, *shape, 2), seed=seed).mask) for seed in seeds]
    return torch.stack(masks)
