"""GRAPPA: the classical k-space parallel-imaging reconstruction of undersampled Cartesian
multicoil data, calibrated on the ACS columns of each sample."""

from __future__ import annotations

import torch

from deepinv_lab.errors import UserError
from deepinv_lab.functional import ifft2c, rss
from deepinv_lab.recons.base import Recon
from deepinv_lab.systems.base import System
from deepinv_lab.systems.grappa import acquired_columns, check_grappa_args, grappa
from deepinv_lab.systems.mri import MaskedComposition, MultiCoilMRI


class GrappaRecon(Recon):
    """GRAPPA (Griswold et al., MRM 47:1202, 2002): the missing k-space columns of every coil
    estimated from the acquired neighbours of all coils
    (:func:`~deepinv_lab.systems.grappa.grappa`), then the coil images combined.

    The mask and the ACS width come from the System (``mask``, ``num_low_frequencies``; without
    an ACS width, the acquired columns around the centre). Nothing is learned.

    Args:
        kernel_size: ``(kx, ky)`` kernel points along the readout ``H`` and the phase-encode
            columns ``W``. Missing points with no acquired sample within the kernel stay 0, so
            random masks with wide gaps need a wider ``ky``.
        regularization: relative Tikhonov weight of the calibration,
            ``lambda = regularization * ||S^H S||_F / n`` (see :mod:`deepinv_lab.systems.grappa`).
        combine: ``"rss"`` -- root-sum-of-squares of the filled coil images (fastMRI's
            convention, no coil maps needed); ``"adjoint"`` -- ``|S^H F^H k|`` with the System's
            coil maps (:class:`~deepinv_lab.systems.mri.MultiCoilMRI` only).

    Shapes: ``y`` ``(B, coils, H, W)`` complex masked k-space with a column mask ``(B, 1, 1, W)``
    -> ``(B, 1, H, W)`` real magnitude.
    """

    def __init__(
        self,
        kernel_size: tuple[int, int] = (5, 5),
        regularization: float = 0.01,
        combine: str = "rss",
    ):
        super().__init__()
        self.kernel_size = check_grappa_args("GrappaRecon", kernel_size, regularization)
        self.regularization = float(regularization)
        if combine not in ("rss", "adjoint"):
            raise UserError(f"GrappaRecon: combine must be 'rss' or 'adjoint', got {combine!r}")
        self.combine = combine

    def check_system(self, system: System, y: torch.Tensor) -> None:
        data = f"the data's System is {type(system).__name__} with measurements of shape "
        data += str(tuple(y.shape))
        if not isinstance(system, MaskedComposition) or not y.is_complex() or y.ndim != 4:
            raise UserError(
                "GrappaRecon needs Cartesian multicoil k-space (B, coils, H, W) with a column "
                f"sampling mask (MultiCoilMRI, MultiCoilFourier), and {data}; use CGSense or a "
                "model-based Recon (MoDL, DEQ) for other Systems"
            )
        if y.shape[1] < 2:
            raise UserError(
                f"GrappaRecon needs several coils to fill k-space, and {data}; use CGSense or "
                "ZeroFilled for single-coil data"
            )
        try:
            acquired_columns(system.mask, tuple(y.shape), y.shape[0])
        except UserError as error:
            raise UserError(f"GrappaRecon cannot use the sampling of {data}: {error}") from None
        if self.combine == "adjoint" and not isinstance(system, MultiCoilMRI):
            raise UserError(
                f"GrappaRecon(combine='adjoint') needs coil maps (MultiCoilMRI), and {data}; "
                "use combine='rss'"
            )

    def kspace(self, y: torch.Tensor, system: MaskedComposition) -> torch.Tensor:
        """The GRAPPA-filled k-space ``(B, coils, H, W)`` complex; arguments as :meth:`forward`."""
        return grappa(
            y,
            system.mask,
            system.num_low_frequencies,
            kernel_size=self.kernel_size,
            regularization=self.regularization,
        )

    def forward(self, y: torch.Tensor, system: MaskedComposition) -> torch.Tensor:
        coil_images = ifft2c(self.kspace(y, system))
        if self.combine == "adjoint":
            return system.coil_sensitivity.adjoint(coil_images).abs()
        return rss(coil_images, dim=1, keepdim=True)
