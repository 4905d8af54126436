"""Scale normalisation of measurements: a Recon run on data divided by a scale measured from the
data themselves, and its output scaled back."""

from __future__ import annotations

import torch

from deepinv_lab.errors import UserError
from deepinv_lab.recons.base import Recon, require_linear
from deepinv_lab.systems.base import LinearSystem, System

#: The statistics of the measurements a scale can be taken from.
STATISTICS = ("adjoint_max", "adjoint_quantile")


class Normalized(Recon):
    """``x_hat = s R(y / s, A)``, with ``s`` per item the maximum (or a high quantile) of
    ``|A^H y|``, the zero-filled (SENSE-combined) image of the measurements.

    Real data come at any scale: fastMRI's k-space is about ``1e-4`` to ``1e-6``, the built-in
    data about 1. Networks with biases and ReLUs are not scale-equivariant, so a MoDL or DEQ
    trained at one scale fails at another. Normalising by a statistic of the measurements (known
    at test time too) makes any Recon scale-equivariant, ``x_hat(a y) = a x_hat(y)``, and puts its
    network's input near 1, as fastMRI's VarNet does inside its U-Nets.

    Args:
        recon: the wrapped Recon (its data consistency is linear in ``y``, so ``A`` is unchanged).
        statistic: ``"adjoint_max"`` (the maximum of ``|A^H y|``) or ``"adjoint_quantile"`` (its
            ``quantile``, robust to a few bright pixels).
        quantile: the quantile of ``"adjoint_quantile"``.

    Shapes: those of ``recon``.
    """

    def __init__(self, recon: Recon, statistic: str = "adjoint_max", quantile: float = 0.99):
        super().__init__()
        if statistic not in STATISTICS:
            raise UserError(
                f"Normalized: statistic must be one of {list(STATISTICS)}, got {statistic!r}"
            )
        if not 0 < quantile <= 1:
            raise UserError(f"Normalized: quantile must be in (0, 1], got {quantile}")
        self.recon = recon
        self.statistic = statistic
        self.quantile = float(quantile)

    def check_system(self, system: System, y: torch.Tensor) -> None:
        require_linear(self, system)
        self.recon.check_system(system, y)

    @torch.no_grad()
    def scale(self, y: torch.Tensor, system: LinearSystem) -> torch.Tensor:
        """``s`` per item, shaped ``(B, 1, ..., 1)`` like ``y``; 1 where ``A^H y`` is zero."""
        image = system.adjoint(y).abs().flatten(1)
        if self.statistic == "adjoint_max":
            scale = image.amax(1)
        else:
            scale = torch.quantile(image.float(), self.quantile, dim=1).to(image.dtype)
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        return scale.reshape(-1, *([1] * (y.ndim - 1)))

    def forward(self, y: torch.Tensor, system: LinearSystem) -> torch.Tensor:
        scale = self.scale(y, system)
        output = self.recon(y / scale.to(y.dtype), system)
        return output * scale.reshape(-1, *([1] * (output.ndim - 1))).to(output.dtype)

    def measurement_estimate(
        self, y: torch.Tensor, system: System, observe: System | None = None
    ) -> torch.Tensor:
        scale = self.scale(y, system).to(y.dtype)
        return self.recon.measurement_estimate(y / scale, system, observe) * scale

    def diagnostics(self) -> dict[str, float]:
        return self.recon.diagnostics()
