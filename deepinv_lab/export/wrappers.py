"""Tensor-only wrappers of Recons: ``forward`` takes plain tensors and builds the System that the
Recon needs from them, so that exporters (``torch.export``, ONNX), which trace tensors only, can
capture the System-independent part of a trained Recon.

* :class:`KSpaceRecon`: multicoil Cartesian k-space Recons that need only a sampling mask and the
  ACS width (VarNet), with the System a
  :class:`~deepinv_lab.systems.mri.MultiCoilFourier` built inside ``forward``.
* :class:`ImageRecon`: image-domain Recons (denoisers, super-resolution) on real images; their
  System is not a function of the data (a noise block, a fixed-factor
  :class:`~deepinv_lab.systems.downsampling.Downsampling`), so it is built once.

:func:`exportable` picks the wrapper of a Recon, or says why it has none.
"""

from __future__ import annotations

import torch
from torch import nn

from deepinv_lab.errors import UserError
from deepinv_lab.recons import (
    Denoiser,
    Interpolation,
    NoisyInput,
    Recon,
    SuperResolution,
    TrainedDenoiser,
    VarNet,
)
from deepinv_lab.systems.downsampling import Downsampling
from deepinv_lab.systems.mri import MultiCoilFourier

#: Recons reconstructing multicoil Cartesian k-space from a mask alone (no coil maps)
KSPACE_RECONS = (VarNet,)
#: image-domain Recons whose System is not a function of the data
IMAGE_RECONS = (Denoiser, TrainedDenoiser, NoisyInput, SuperResolution, Interpolation)


class TensorRecon(nn.Module):
    """A Recon behind a ``forward`` of plain tensors (the base of the export wrappers).

    Subclasses say which inputs they take (:attr:`input_names`), which of their dimensions may
    vary in an exported program (:meth:`dynamic_dims`) and how to make a random example
    (:meth:`example_inputs`).
    """

    input_names: tuple[str, ...] = ()
    output_names: tuple[str, ...] = ("reconstruction",)

    def __init__(self, recon: Recon):
        super().__init__()
        self.recon = recon

    def dynamic_dims(self) -> dict[str, dict[int, str]]:
        """``{input name: {dimension: label}}``: the dimensions (batch, height, width) that an
        exported program should leave free; the labels tie dimensions of several inputs."""
        raise NotImplementedError

    def example_inputs(
        self, shape: tuple[int, ...], batch_size: int = 1, seed: int = 0
    ) -> tuple[torch.Tensor, ...]:
        """Random inputs for one ``(C, H, W)`` example ``shape`` (channels or coils, height,
        width), ``batch_size`` of them."""
        raise NotImplementedError


class KSpaceRecon(TensorRecon):
    """``forward(kspace, mask, num_low_frequencies)`` of a k-space Recon (VarNet): the System is
    ``MultiCoilFourier(mask, num_low_frequencies)``, built inside ``forward``.

    Args:
        recon: a Recon reconstructing multicoil Cartesian k-space from a
            :class:`~deepinv_lab.systems.mri.MultiCoilFourier` System (e.g. VarNet).
        real_view: take k-space as its real view ``(B, coils, H, W, 2)`` float32
            (``torch.view_as_real``), for formats without a complex dtype (ONNX).

    Inputs: ``kspace`` masked k-space ``(B, coils, H, W)`` complex64 (or its real view);
    ``mask`` ``(B, 1, 1, W)`` float32 column mask; ``num_low_frequencies`` ``(B,)`` int64, the ACS
    width of each sample (> 0). Output: ``(B, 1, H, W)`` magnitude images.
    """

    input_names = ("kspace", "mask", "num_low_frequencies")

    def __init__(self, recon: Recon, real_view: bool = False):
        super().__init__(recon)
        self.real_view = real_view

    def forward(
        self, kspace: torch.Tensor, mask: torch.Tensor, num_low_frequencies: torch.Tensor
    ) -> torch.Tensor:
        if self.real_view:
            kspace = torch.view_as_complex(kspace)
        return self.recon(kspace, MultiCoilFourier(mask, num_low_frequencies))

    def dynamic_dims(self) -> dict[str, dict[int, str]]:
        return {
            "kspace": {0: "batch", 2: "height", 3: "width"},
            "mask": {0: "batch", 3: "width"},
            "num_low_frequencies": {0: "batch"},
        }

    def example_inputs(
        self, shape: tuple[int, ...], batch_size: int = 1, seed: int = 0
    ) -> tuple[torch.Tensor, ...]:
        """Random k-space of ``shape`` ``(coils, H, W)`` under a 4x column mask with
        ``W // 12`` (at least 2) fully sampled central columns, the ACS width."""
        coils, height, width = _shape3(shape, "(coils, H, W)")
        generator = torch.Generator().manual_seed(seed)
        acs = max(2, width // 12)
        mask = (torch.rand(batch_size, 1, 1, width, generator=generator) < 0.25).float()
        start = (width - acs + 1) // 2
        mask[..., start : start + acs] = 1.0
        kspace = torch.randn(
            batch_size, coils, height, width, dtype=torch.complex64, generator=generator
        )
        kspace = kspace * mask
        if self.real_view:
            kspace = torch.view_as_real(kspace).contiguous()
        return kspace, mask, torch.full((batch_size,), acs, dtype=torch.long)


class ImageRecon(TensorRecon):
    """``forward(image)`` of an image-domain Recon: a denoiser (its System, a noise block, is not
    used) or super-resolution (its System a fixed-factor Downsampling, built once).

    Args:
        recon: a Denoiser, TrainedDenoiser, NoisyInput, SuperResolution or Interpolation.
        scale: the super-resolution factor, for a Recon that reads it from its System (``scale``
            unset) and needs it (bicubic input or residual); ignored otherwise.

    Input: ``image`` ``(B, C, H, W)`` real (for super-resolution the low-resolution image).
    Output: the reconstruction ``(B, C, H', W')``.
    """

    input_names = ("image",)

    def __init__(self, recon: Recon, scale: int | None = None):
        super().__init__(recon)
        needs_scale = isinstance(recon, Interpolation) or (
            isinstance(recon, SuperResolution) and (recon.upsample_input or recon.residual)
        )
        factor = getattr(recon, "scale", None) or scale
        if needs_scale and factor is None:
            raise UserError(
                f"{type(recon).__name__} takes its scale factor from the data's System; give "
                "the factor (deepinv-lab export --scale N)"
            )
        self.system = Downsampling(factor) if factor is not None else None

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.recon(image, self.system)

    def dynamic_dims(self) -> dict[str, dict[int, str]]:
        return {"image": {0: "batch", 2: "height", 3: "width"}}

    def example_inputs(
        self, shape: tuple[int, ...], batch_size: int = 1, seed: int = 0
    ) -> tuple[torch.Tensor, ...]:
        """A random image batch ``(batch_size, C, H, W)`` for ``shape`` ``(C, H, W)``."""
        channels, height, width = _shape3(shape, "(C, H, W)")
        generator = torch.Generator().manual_seed(seed)
        return (torch.rand(batch_size, channels, height, width, generator=generator),)


def exportable(recon: Recon, real_view: bool = False, scale: int | None = None) -> TensorRecon:
    """The tensor-only wrapper of ``recon``: :class:`KSpaceRecon` for VarNet, :class:`ImageRecon`
    for image-domain Recons; a :class:`~deepinv_lab.errors.UserError` for every other Recon,
    saying what it needs that plain tensors do not give.

    ``real_view``: k-space as its real view (for ONNX). ``scale``: see :class:`ImageRecon`.
    """
    if isinstance(recon, KSPACE_RECONS):
        return KSpaceRecon(recon, real_view=real_view)
    if isinstance(recon, IMAGE_RECONS):
        return ImageRecon(recon, scale=scale)
    raise UserError(
        f"{type(recon).__name__} has no exportable wrapper: only k-space Recons that need a "
        "mask alone (VarNet) and image-domain Recons (Denoiser, TrainedDenoiser, "
        "SuperResolution, Interpolation, NoisyInput) export; model-based Recons need the data's "
        "System (coil maps of MultiCoilMRI, a NUFFT, a GRAPPA kernel), which is built per "
        "batch from more than plain tensors"
    )


def _shape3(shape: tuple[int, ...], what: str) -> tuple[int, int, int]:
    if len(shape) != 3 or any(not isinstance(size, int) or size < 1 for size in shape):
        raise UserError(f"example shape must be 3 positive integers {what}, got {shape}")
    return shape[0], shape[1], shape[2]
