"""CG-SENSE: regularised least squares, the classical baseline and initialiser of model-based
networks."""

from __future__ import annotations

from typing import Literal

import torch

from deepinv_lab.optim.cg import CGInfo, check_cg_args
from deepinv_lab.optim.convergence import OnFailure, check_on_failure
from deepinv_lab.optim.data_consistency import positive_weight
from deepinv_lab.optim.least_squares import least_squares
from deepinv_lab.recons.base import Recon, require_linear
from deepinv_lab.systems.base import LinearSystem


class CGSense(Recon):
    """``x = argmin_x ||A x - y||^2 + lam ||x||^2 = (A^H A + lam I)^{-1} A^H y`` by conjugate
    gradient (Pruessmann et al., MRM 2001, with Tikhonov regularisation).

    With a :class:`~deepinv_lab.systems.mri.MultiCoilMRI` this is SigPy's
    ``sigpy.mri.app.SenseRecon(y, mps, lamda=lam, weights=mask)`` (which minimises
    ``1/2 ||A x - y||^2 + lam/2 ||x||^2``, the same solution).

    Args:
        damping: ``lam > 0``.
        learn_damping: make ``lam`` a trainable parameter (stored as ``log lam``), so that
            ``fit`` calibrates the one regularisation weight on the training data (the gradient
            flows through the solve, see ``backward``). Otherwise the Recon has nothing to train.
        tol, max_iter: CG stopping rule, per sample ``||r|| / ||A^H y|| <= tol``.
        backward: ``"implicit"`` (a second CG solve in the backward pass) or ``"autograd"``.
        magnitude: return ``|x|`` (for magnitude targets) rather than the complex ``x``.
        on_failure: what a missed tolerance does (``"warn"``, ``"raise"``, ``"ignore"``).

    Shapes: ``y`` as the System produces it -> ``(B, 1, H, W)`` for MRI.
    """

    def __init__(
        self,
        damping: float = 0.01,
        learn_damping: bool = False,
        tol: float = 1e-5,
        max_iter: int = 100,
        backward: Literal["autograd", "implicit"] = "implicit",
        magnitude: bool = True,
        on_failure: OnFailure = "warn",
    ):
        super().__init__()
        check_on_failure(on_failure, type(self).__name__)
        check_cg_args(type(self).__name__, tol, max_iter, backward)
        self.log_damping = positive_weight(damping, learn_damping, "damping", type(self).__name__)
        self.tol, self.max_iter, self.backward = tol, max_iter, backward
        self.magnitude, self.on_failure = magnitude, on_failure
        self.last_info: CGInfo | None = None

    @property
    def damping(self) -> torch.Tensor:
        return self.log_damping.exp()

    def forward(self, y: torch.Tensor, system: LinearSystem) -> torch.Tensor:
        x, self.last_info = least_squares(
            system,
            y,
            damping=self.damping,
            tol=self.tol,
            max_iter=self.max_iter,
            backward=self.backward,
            on_failure=self.on_failure,
        )
        return x.abs() if self.magnitude and x.is_complex() else x

    def check_system(self, system, y: torch.Tensor) -> None:
        require_linear(self, system)

    def diagnostics(self) -> dict[str, float]:
        out = {"cg/damping": float(self.damping.detach())}
        if self.last_info is not None:
            out.update(self.last_info.summary("cg/"))
        return out
