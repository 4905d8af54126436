"""The zero-filled baseline: no learning, just the inverse FFT of the measured k-space."""

from __future__ import annotations

import torch

from deepinv_lab.errors import UserError
from deepinv_lab.functional import ifft2c, ifft3c, rss
from deepinv_lab.recons.base import Recon, require_linear
from deepinv_lab.systems.base import LinearSystem, System
from deepinv_lab.systems.mri import MaskedComposition


class ZeroFilled(Recon):
    """Zero-filled reconstruction of multicoil k-space.

    Args:
        combine: ``"rss"`` -- root-sum-of-squares of the zero-filled coil images (fastMRI's
            baseline, which needs no coil maps); ``"adjoint"`` -- ``|A^H y|``, the SENSE coil
            combination with the System's coil maps.

    Shapes: ``y`` ``(B, coils, H, W)`` complex -> ``(B, 1, H, W)`` real magnitude; 3D Cartesian
    k-space ``(B, coils, X, Y, Z)`` -> ``(B, 1, X, Y, Z)``.
    """

    def __init__(self, combine: str = "rss"):
        super().__init__()
        if combine not in ("rss", "adjoint"):
            raise UserError(f"ZeroFilled: combine must be 'rss' or 'adjoint', got {combine!r}")
        self.combine = combine

    def check_system(self, system: System, y: torch.Tensor) -> None:
        if self.combine == "adjoint":
            require_linear(self, system)
        elif not isinstance(system, MaskedComposition):
            raise UserError(
                f"ZeroFilled(combine='rss') needs Cartesian k-space (B, coils, H, W), and the "
                f"data's System is {type(system).__name__}; use ZeroFilled(combine='adjoint') "
                "(|A^H y|: density-compensated gridding for non-Cartesian data) or CGSense"
            )

    def forward(self, y: torch.Tensor, system: LinearSystem) -> torch.Tensor:
        if self.combine == "adjoint":
            return system.adjoint(y).abs()
        inverse = ifft3c if y.ndim == 5 else ifft2c  # 3D Cartesian k-space (B, coils, X, Y, Z)
        return rss(inverse(y), dim=1, keepdim=True)
