"""3D Cartesian MRI reconstructed as 2D ky-kz problems: the readout is decoupled by a 1D inverse
FFT, and any 2D multicoil Recon reconstructs the slices (the standard practice for 3D
acquisitions with 2D undersampling of the ky-kz plane, e.g. SKM-TEA and Calgary-Campinas)."""

from __future__ import annotations

import torch

from deepinv_lab.errors import UserError
from deepinv_lab.recons.base import Recon
from deepinv_lab.systems.base import System
from deepinv_lab.systems.mri3d import MultiCoilMRI3D, reconstruct_slices


class ReadoutDecoupled(Recon):
    """A 2D multicoil Recon applied to a 3D Cartesian acquisition slice by slice.

    A fully sampled readout ``kx`` makes the 3D problem ``M F_3 S`` separable: the centred 1D
    inverse FFT along ``kx`` turns the k-space into ``X`` independent 2D problems ``M F_2 S_x``
    over ``(ky, kz)``, one per readout position ``x``, each with the ky-kz mask and the coil maps
    of its slice (:func:`~deepinv_lab.systems.mri3d.decouple_readout`; exact, and orthonormal,
    so white noise stays white). ``recon`` reconstructs the ``B X`` slices and the results are
    stacked back into volumes. Trained this way, the 2D network learns from every ky-kz slice of
    every training volume, and the same weights reconstruct whole volumes.

    Args:
        recon: any 2D multicoil Recon (VarNet, MoDL, CGSense, ZeroFilled, ...).
        chunk_size: slices per call of ``recon`` (``None``: all ``B X`` at once); bounds the
            memory of validation and test on large volumes.

    Shapes: ``y`` ``(B, coils, X, Y, Z)`` complex k-space of a
    :class:`~deepinv_lab.systems.mri3d.MultiCoilMRI3D` -> ``(B, C, X, Y, Z)``, ``C`` the 2D
    Recon's output channels (1 for magnitude images).
    """

    def __init__(self, recon: Recon, chunk_size: int | None = None):
        super().__init__()
        if chunk_size is not None and (
            isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
        ):
            raise UserError(
                f"ReadoutDecoupled: chunk_size must be >= 1 or null, got {chunk_size!r}"
            )
        self.recon = recon
        self.chunk_size = chunk_size

    def check_system(self, system: System, y: torch.Tensor) -> None:
        if not isinstance(system, MultiCoilMRI3D):
            raise UserError(
                "ReadoutDecoupled reconstructs 3D Cartesian acquisitions (MultiCoilMRI3D, k-space "
                f"(B, coils, X, Y, Z)); the data's System is {type(system).__name__} with "
                f"measurements of shape {tuple(y.shape)}"
            )
        hybrid, system_2d = system.decouple(y)
        self.recon.check_system(system_2d, hybrid)

    def forward(self, y: torch.Tensor, system: MultiCoilMRI3D) -> torch.Tensor:
        return reconstruct_slices(self.recon, y, system, self.chunk_size)

    def diagnostics(self) -> dict[str, float]:
        """The 2D Recon's diagnostics of its last call (the last chunk)."""
        return self.recon.diagnostics()
