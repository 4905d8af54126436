"""Data-consistency steps of model-based networks: they use the forward model only through
``A^H y`` and the normal operator ``A^H A`` (callables), so any System fits.

* :class:`ProximalDataConsistency` -- MoDL's step, the proximal operator of the data term:
  ``argmin_x ||A x - y||^2 + lam ||x - z||^2 = (A^H A + lam I)^{-1} (A^H y + lam z)``, by
  conjugate gradient.
* :class:`GradientDescentStep` -- a gradient step on ``1/2 ||A x - y||^2``:
  ``x - eta (A^H A x - A^H y)``.

Both learn their weight (``lam``, ``eta``) by default. A learned weight is stored as its logarithm,
so it stays positive whatever the optimizer does: ``A^H A + lam I`` stays positive definite.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

from deepinv_lab.errors import UserError
from deepinv_lab.optim.cg import CGInfo, check_cg_args, conjugate_gradient
from deepinv_lab.optim.convergence import OnFailure, check_on_failure

NormalOperator = Callable[[torch.Tensor], torch.Tensor]


def positive_weight(value: float, learn: bool, name: str, owner: str) -> nn.Parameter:
    """``log(value)`` as a parameter (trainable if ``learn``); ``value`` must be > 0."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
        raise UserError(f"{owner}: {name} must be a number > 0, got {value!r}")
    return nn.Parameter(torch.tensor(math.log(value)), requires_grad=learn)


class ProximalDataConsistency(nn.Module):
    """``x = (A^H A + lam I)^{-1} (A^H y + lam z)``: MoDL's data-consistency block.

    Args:
        damping: ``lam > 0``, the weight of ``||x - z||^2`` (MoDL initialises it at 0.05).
        learn_damping: train ``lam`` (stored as ``log lam``).
        tol, max_iter: CG stopping rule per sample (MoDL uses a fixed 10 iterations).
        backward: ``"autograd"`` through the CG iterations or ``"implicit"`` (a CG solve in the
            backward pass; memory independent of ``max_iter``), see
            :func:`~deepinv_lab.optim.cg.conjugate_gradient`.
        on_failure: what a missed tolerance does (``"warn"``, ``"raise"``, ``"ignore"``).

    ``last_info`` / ``last_backward_info`` hold the :class:`~deepinv_lab.optim.cg.CGInfo` of the
    latest forward / backward solve.
    """

    def __init__(
        self,
        damping: float = 0.05,
        learn_damping: bool = True,
        tol: float = 1e-6,
        max_iter: int = 10,
        backward: Literal["autograd", "implicit"] = "autograd",
        on_failure: OnFailure = "warn",
    ):
        super().__init__()
        owner = type(self).__name__
        check_on_failure(on_failure, owner)
        check_cg_args(owner, tol, max_iter, backward)
        self.log_damping = positive_weight(damping, learn_damping, "damping", owner)
        self.tol, self.max_iter = tol, max_iter
        self.backward, self.on_failure = backward, on_failure
        self.last_info: CGInfo | None = None
        self.last_backward_info: CGInfo | None = None

    @property
    def damping(self) -> torch.Tensor:
        """``lam``, a positive 0-d tensor."""
        return self.log_damping.exp()

    def _record_backward(self, info: CGInfo) -> None:
        self.last_backward_info = info

    def forward(
        self,
        z: torch.Tensor,
        adjoint_y: torch.Tensor,
        normal: NormalOperator,
        x0: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``z`` (prior output), ``adjoint_y`` (``A^H y``) and ``x0`` (CG start, default ``z``)
        are images ``(B, C, H, W)`` of one dtype; ``normal`` applies ``A^H A``."""
        lam = self.damping
        rhs = adjoint_y + lam.to(adjoint_y.real.dtype) * z
        x, self.last_info = conjugate_gradient(
            normal,
            rhs,
            x0=z.detach() if x0 is None else x0,
            tol=self.tol,
            max_iter=self.max_iter,
            damping=lam,
            backward=self.backward,
            on_failure=self.on_failure,
            on_backward=self._record_backward,
        )
        return x

    def diagnostics(self, prefix: str = "cg/") -> dict[str, float]:
        """``lam`` and the latest forward and backward solves (:meth:`CGInfo.summary`)."""
        out = {f"{prefix}damping": float(self.damping.detach())}
        if self.last_info is not None:
            out.update(self.last_info.summary(prefix))
        if self.last_backward_info is not None:
            out.update(self.last_backward_info.summary(f"{prefix}backward_"))
        return out

    def extra_repr(self) -> str:
        return f"max_iter={self.max_iter}, tol={self.tol:g}, backward={self.backward!r}"


class GradientDescentStep(nn.Module):
    """``x - eta (A^H A x - A^H y)``: a gradient step on ``1/2 ||A x - y||^2``.

    Args:
        step_size: ``eta > 0`` (for a System with ``||A|| <= 1``, such as the orthonormal MRI
            Systems, ``eta <= 2`` makes the step non-expansive).
        learn_step_size: train ``eta`` (stored as ``log eta``).
    """

    def __init__(self, step_size: float = 1.0, learn_step_size: bool = True):
        super().__init__()
        owner = type(self).__name__
        self.log_step_size = positive_weight(step_size, learn_step_size, "step_size", owner)

    @property
    def step_size(self) -> torch.Tensor:
        return self.log_step_size.exp()

    def diagnostics(self, prefix: str = "gradient_step/") -> dict[str, float]:
        """``eta`` as ``{prefix}step_size``."""
        return {f"{prefix}step_size": float(self.step_size.detach())}

    def forward(
        self, x: torch.Tensor, adjoint_y: torch.Tensor, normal: NormalOperator
    ) -> torch.Tensor:
        eta = self.step_size.to(x.real.dtype)
        return x - eta * (normal(x) - adjoint_y)
