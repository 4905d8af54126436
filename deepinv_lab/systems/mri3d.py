"""3D Cartesian multicoil MRI and the readout decoupling that turns it into 2D problems.

A 3D Cartesian acquisition samples k-space ``(kx, ky, kz)`` along readout lines in ``kx``: every
line is fully sampled, and the sampling pattern is a 2D mask on the ``ky-kz`` (phase-encode)
plane. Axes follow the image: a volume is ``(B, 1, X, Y, Z)`` with ``X`` the readout, coil maps
and k-space are ``(B, coils, X, Y, Z)``, and the mask broadcasts as ``(B, 1, 1, Y, Z)``.

Since the mask does not vary along ``kx``, the centered 1D inverse FFT along ``kx`` commutes with
it: ``F_x^H M F_x F_y F_z S = M F_y F_z S``, so the hybrid-space data ``F_x^H y`` at readout
position ``x`` are the 2D multicoil measurements ``M F_yz (S_x x_x)`` of the slice ``x_x`` with
the slice's coil maps ``S_x``. :func:`decouple_readout` returns them as a batch of ``B X``
independent 2D problems, and :func:`reassemble_readout` stacks ``(B X, 1, Y, Z)`` slices back
into volumes, so that any 2D multicoil Recon reconstructs a 3D acquisition slice by slice
(:func:`reconstruct_slices`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from deepinv_lab.errors import UserError
from deepinv_lab.functional.fft import ifft1c
from deepinv_lab.systems.base import real_dtype
from deepinv_lab.systems.mri import (
    FFT3,
    CoilSensitivity,
    KSpaceMask,
    MaskedComposition,
    MultiCoilMRI,
    masked_sense_normal,
)


def check_kykz_mask(owner: str, mask: torch.Tensor, kspace_shape: torch.Size) -> None:
    """A :class:`~deepinv_lab.errors.UserError` unless ``mask`` is a real ky-kz mask
    ``(B or 1, 1, 1, Y or 1, Z or 1)`` that broadcasts against k-space ``(B, coils, X, Y, Z)``."""
    try:
        fits = torch.broadcast_shapes(mask.shape, kspace_shape) == kspace_shape
    except RuntimeError:
        fits = False
    if mask.is_complex() or mask.ndim != 5 or mask.shape[1:3] != (1, 1) or not fits:
        raise UserError(
            f"{owner}: the mask must be a real ky-kz mask (B, 1, 1, Y, Z) that broadcasts "
            f"against k-space of shape {tuple(kspace_shape)}, got dtype {mask.dtype} with shape "
            f"{tuple(mask.shape)}"
        )


class MultiCoilMRI3D(MaskedComposition):
    """3D multicoil Cartesian MRI ``A = M F S`` with the centered 3D FFT ``F``
    (:class:`~deepinv_lab.systems.mri.FFT3`) and a ky-kz mask ``M``.

    Args:
        coil_maps: complex ``(B, coils, X, Y, Z)`` sensitivity maps, ``X`` the readout.
        mask: real ky-kz mask ``(B, 1, 1, Y, Z)`` (a leading 1 broadcasts over the batch); the
            readout is fully sampled, which :meth:`decouple` relies on.
        num_low_frequencies: width (along ``Z``) of the fully sampled calibration block, see
            :class:`~deepinv_lab.systems.mri.KSpaceMask`.

    Shapes: ``forward``: ``(B, 1, X, Y, Z)`` complex volume -> ``(B, coils, X, Y, Z)`` masked
    k-space; ``adjoint``: the reverse (SENSE combination of the zero-filled coil volumes).
    """

    def __init__(
        self,
        coil_maps: torch.Tensor,
        mask: torch.Tensor,
        num_low_frequencies: int | torch.Tensor | None = None,
    ):
        if coil_maps.ndim != 5 or not coil_maps.is_complex():
            raise UserError(
                "MultiCoilMRI3D expects complex coil maps of shape (B, coils, X, Y, Z), got "
                f"dtype {coil_maps.dtype} with shape {tuple(coil_maps.shape)}"
            )
        check_kykz_mask("MultiCoilMRI3D", mask, coil_maps.shape)
        super().__init__(
            [KSpaceMask(mask, num_low_frequencies), FFT3(), CoilSensitivity(coil_maps)]
        )

    @property
    def coil_maps(self) -> torch.Tensor:
        return self.systems[2].coil_maps

    @property
    def coil_sensitivity(self) -> CoilSensitivity:
        return self.systems[2]

    def with_mask(self, mask: torch.Tensor) -> MultiCoilMRI3D:
        """The same coil maps with another ky-kz mask; the ACS width is kept."""
        return MultiCoilMRI3D(self.coil_maps, mask, self.num_low_frequencies)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        """``A^H A x = S^H F^H M F S x`` with FFTs only along the axes the mask varies on (2D
        FFTs over ``Y, Z`` for a ky-kz mask: the readout transforms cancel), see
        :func:`~deepinv_lab.systems.mri.masked_sense_normal`."""
        maps = self.coil_maps
        if x.ndim != 5 or x.shape[1] != 1 or x.shape[2:] != maps.shape[2:] or not x.is_complex():
            return super().normal(x)  # the primitives raise their errors
        return masked_sense_normal(maps, self.mask, x)

    def decouple(self, kspace: torch.Tensor) -> tuple[torch.Tensor, MultiCoilMRI]:
        """The 2D problems of the readout positions: hybrid-space data ``(B X, coils, Y, Z)``
        and the 2D :class:`~deepinv_lab.systems.mri.MultiCoilMRI` of their slices
        (:func:`decouple_readout`)."""
        slices = decouple_readout(kspace, self.coil_maps, self.mask)
        widths = self.num_low_frequencies
        if widths is not None and widths.numel() > 1:
            widths = widths.repeat_interleave(kspace.shape[2])
        return slices.kspace, MultiCoilMRI(slices.coil_maps, slices.mask, widths)

    @classmethod
    def example(cls, batch_size: int = 2, dtype: torch.dtype = torch.complex64):
        maps = torch.randn(batch_size, 3, 4, 6, 5, dtype=dtype)
        # soft weights with zeros: A^H A must carry mask^2, which a 0/1 mask would not test
        sampled = torch.rand(batch_size, 1, 1, 6, 5) > 0.5
        mask = (sampled * (0.25 + torch.rand(batch_size, 1, 1, 6, 5))).to(real_dtype(dtype))
        return cls(maps, mask), torch.randn(batch_size, 1, 4, 6, 5, dtype=dtype)


class DecoupledReadout(NamedTuple):
    """The 2D ky-kz problems of a 3D acquisition, one per (sample, readout position), in the
    order ``b X + x``.

    Attributes:
        kspace: hybrid-space data ``(B X, coils, Y, Z)`` (inverse FFT along ``kx`` done).
        coil_maps: the slices' coil maps ``(B X, coils, Y, Z)``, or ``None`` when none were given.
        mask: the ky-kz mask ``(B X, 1, Y, Z)`` (every readout position of a sample shares its
            sample's mask), or ``(1, 1, Y, Z)`` for a mask shared by the batch; ``None`` when
            none was given.
    """

    kspace: torch.Tensor
    coil_maps: torch.Tensor | None
    mask: torch.Tensor | None


def _volumes_to_slices(t: torch.Tensor) -> torch.Tensor:
    """``(B, C, X, Y, Z)`` -> ``(B X, C, Y, Z)``, slice ``b X + x``."""
    batch, channels, readout, *plane = t.shape
    return t.movedim(2, 1).reshape(batch * readout, channels, *plane)


def decouple_readout(
    kspace: torch.Tensor,
    coil_maps: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
) -> DecoupledReadout:
    """Split a 3D Cartesian acquisition into independent 2D ky-kz problems (module docstring).

    Applies the centered orthonormal 1D inverse FFT along ``kx`` and moves the readout into the
    batch. The slices' k-space equals ``MultiCoilMRI(coil_maps_2d, mask_2d)`` applied to the
    volume's slices ``(B X, 1, Y, Z)``.

    Args:
        kspace: complex ``(B, coils, X, Y, Z)`` k-space, ``X`` the (fully sampled) readout.
        coil_maps: complex ``(B, coils, X, Y, Z)`` maps, or ``None``.
        mask: real ky-kz mask ``(B or 1, 1, 1, Y, Z)``, or ``None``.

    Returns:
        :class:`DecoupledReadout` ``(kspace, coil_maps, mask)`` with ``B X`` slices.
    """
    if not kspace.is_complex() or kspace.ndim != 5:
        raise UserError(
            "decouple_readout expects complex k-space (B, coils, X, Y, Z), got dtype "
            f"{kspace.dtype} with shape {tuple(kspace.shape)}"
        )
    readout = kspace.shape[2]
    maps_2d = None
    if coil_maps is not None:
        if coil_maps.shape != kspace.shape:
            raise UserError(
                f"decouple_readout: coil maps of shape {tuple(coil_maps.shape)} do not match "
                f"k-space of shape {tuple(kspace.shape)}"
            )
        maps_2d = _volumes_to_slices(coil_maps)
    mask_2d = None
    if mask is not None:
        check_kykz_mask("decouple_readout", mask, kspace.shape)
        mask_2d = mask[:, :, 0]  # (B or 1, 1, Y, Z)
        if mask.shape[0] > 1:  # per-sample masks: one per slice
            mask_2d = mask_2d.repeat_interleave(readout, dim=0)
    hybrid = _volumes_to_slices(ifft1c(kspace, dim=2))
    return DecoupledReadout(hybrid, maps_2d, mask_2d)


def reassemble_readout(slices: torch.Tensor, readout: int) -> torch.Tensor:
    """Stack the slices of :func:`decouple_readout` back into volumes:
    ``(B X, C, Y, Z)`` -> ``(B, C, X, Y, Z)`` (real or complex, any ``C``).

    Args:
        slices: the reconstructed slices in the order ``b X + x``.
        readout: ``X``, the number of readout positions per volume.
    """
    if slices.ndim != 4 or readout < 1 or slices.shape[0] % readout:
        raise UserError(
            f"reassemble_readout expects slices (B X, C, Y, Z) with X = {readout} dividing the "
            f"batch, got shape {tuple(slices.shape)}"
        )
    batch = slices.shape[0] // readout
    return slices.reshape(batch, readout, *slices.shape[1:]).movedim(1, 2)


def reconstruct_slices(
    recon: Callable[[torch.Tensor, MultiCoilMRI], torch.Tensor],
    kspace: torch.Tensor,
    system: MultiCoilMRI3D,
    chunk_size: int | None = None,
) -> torch.Tensor:
    """Reconstruct a 3D acquisition slice by slice with a 2D multicoil Recon.

    Args:
        recon: any callable ``recon(y, system) -> x_hat`` on 2D problems (a Recon's signature):
            ``(n, coils, Y, Z)`` k-space and a :class:`~deepinv_lab.systems.mri.MultiCoilMRI`
            -> ``(n, C, Y, Z)``.
        kspace: ``(B, coils, X, Y, Z)`` masked k-space of ``system``.
        system: the 3D System.
        chunk_size: slices per call (``None``: all ``B X`` at once), to bound memory.

    Returns:
        ``(B, C, X, Y, Z)`` volumes.
    """
    hybrid, system_2d = system.decouple(kspace)
    total = hybrid.shape[0]
    step = total if chunk_size is None else int(chunk_size)
    if step < 1:
        raise UserError(f"reconstruct_slices: chunk_size must be >= 1 or None, got {chunk_size}")
    outputs = []
    for start in range(0, total, step):
        part = slice(start, min(start + step, total))
        outputs.append(recon(hybrid[part], _slice_system(system_2d, part)))
    return reassemble_readout(torch.cat(outputs), kspace.shape[2])


def _slice_system(system: MultiCoilMRI, part: slice) -> MultiCoilMRI:
    """The 2D System of the slices ``part`` of a decoupled batch."""
    mask = system.mask if system.mask.shape[0] == 1 else system.mask[part]
    widths = system.num_low_frequencies
    if widths is not None and widths.numel() > 1:
        widths = widths[part]
    return MultiCoilMRI(system.coil_maps[part], mask, widths)
