"""Variable splitting for ``1/2 ||A x - y||^2 + g(x)``: ADMM and half-quadratic splitting (HQS),
per sample of a batch, with a penalty that may change at every iteration.

Splitting ``x = z``, iteration ``k`` with penalty ``rho_k > 0`` is

    x_k = argmin_x 1/2 ||A x - y||^2 + rho_k / 2 ||x - (z_{k-1} - u_{k-1})||^2
        = (A^H A + rho_k I)^{-1} (A^H y + rho_k (z_{k-1} - u_{k-1}))        (CG, warm-started)
    z_k = prox_{g / rho_k}(x_k + u_{k-1})
    u_k = u_{k-1} + x_k - z_k                                                (ADMM only)

(Boyd et al., Found. Trends Mach. Learn. 2011, scaled form; ``u = 0`` throughout gives HQS,
Geman & Yang 1995). When ``rho`` changes, the scaled dual is rescaled,
``u <- u rho_{k-1} / rho_k``, so that the unscaled dual ``rho u`` is continuous. The proximal step
may be any callable, e.g. a denoiser told the noise level ``sqrt(step)`` times a constant: that is
plug-and-play (Venkatakrishnan et al. 2013; Chan et al. 2017 for ADMM with a growing ``rho``;
Zhang et al., DPIR, TPAMI 2021 for HQS with a decreasing noise-level schedule).

The x-step is solved by CG on ``A^H A + rho_k I`` (started from the previous ``x``), with a fixed
budget: ``cg_max_iter`` iterations or ``||r|| / ||b|| <= cg_tol``; an unconverged x-step is not
reported as a failure (the outer iteration corrects it) but its iterations are counted.

A sample stops once its relative change ``||z_k - z_{k-1}|| / ||z_k||`` is at most ``tol``
(``tol = 0``: run all the iterations); its iterates are then frozen while the others go on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from deepinv_lab.errors import UserError
from deepinv_lab.optim.cg import check_cg_args, conjugate_gradient
from deepinv_lab.optim.convergence import (
    OnFailure,
    SolveInfo,
    check_convergence,
    relative_change,
)
from deepinv_lab.optim.fista import Proximal
from deepinv_lab.optim.least_squares import NormalOperator


@dataclass(frozen=True)
class SplittingInfo(SolveInfo):
    """What an ADMM/HQS solve did, per sample (detached ``(B,)`` tensors).

    Attributes:
        iterations: outer iterations in which the sample was still updated.
        relative_residual: the last relative change ``||z_k - z_{k-1}|| / ||z_k||``.
        converged: whether ``relative_residual <= tol``.
        primal_residual: ``||x_K - z_K|| / ||z_K||``, how far the split variables still differ.
        cg_iterations: CG iterations of all the x-steps together.
    """

    iterations: torch.Tensor
    relative_residual: torch.Tensor
    converged: torch.Tensor
    primal_residual: torch.Tensor
    cg_iterations: torch.Tensor

    def summary(self, prefix: str = "") -> dict[str, float]:
        out = super().summary(prefix)
        out[f"{prefix}primal_residual"] = float(self.primal_residual.max())
        out[f"{prefix}cg_iterations"] = float(self.cg_iterations.double().mean())
        return out


def check_penalties(penalties: Sequence[float] | torch.Tensor, owner: str) -> torch.Tensor:
    """The penalties ``rho_k`` as a 1-D float64 tensor; a UserError unless all are finite and
    ``> 0``."""
    values = torch.as_tensor(penalties, dtype=torch.float64).flatten()
    if values.numel() == 0 or not bool(torch.isfinite(values).all()) or bool((values <= 0).any()):
        shown = [float(v) for v in values[:6]]
        raise UserError(f"{owner}: the penalties rho must be finite and > 0, got {shown}")
    return values


def admm(
    system: NormalOperator,
    y: torch.Tensor,
    prox: Proximal,
    penalties: Sequence[float] | torch.Tensor,
    dual: bool = True,
    tol: float = 0.0,
    cg_tol: float = 1e-6,
    cg_max_iter: int = 20,
    x0: torch.Tensor | None = None,
    on_failure: OnFailure = "warn",
) -> tuple[torch.Tensor, torch.Tensor, SplittingInfo]:
    """ADMM (``dual=True``) or HQS (``dual=False``) for ``1/2 ||A x - y||^2 + g(x)``; see the
    module docstring.

    Args:
        system: ``A`` with ``adjoint(y)`` and ``normal(x)`` (any LinearSystem), per sample.
        y: measurements ``(B, ...)``.
        prox: ``prox(v, step)``, the proximal operator of ``step * g``; called with
            ``step = 1 / rho_k`` shaped ``(B, 1, ...)``.
        penalties: ``rho_k > 0`` of each iteration; their number is the iteration budget.
        dual: keep the scaled dual ``u`` (ADMM) or not (HQS).
        tol: stop a sample once its relative change is at most ``tol`` (0: all iterations).
        cg_tol, cg_max_iter: each x-step's CG budget.
        x0: the initial ``z`` (default ``A^H y``), shaped like ``A^H y``.
        on_failure: what a missed ``tol > 0`` does; a non-finite change raises in every mode.

    Returns:
        ``(x, z, info)``: the last x-step (data-consistent), the last proximal step and a
        :class:`SplittingInfo`.
    """
    rhos = check_penalties(penalties, "admm")
    check_cg_args("admm", cg_tol, cg_max_iter, names={"tol": "cg_tol", "max_iter": "cg_max_iter"})
    check_cg_args("admm", tol, len(rhos))
    adjoint_y = system.adjoint(y)
    batch = adjoint_y.shape[0]
    shape = (batch,) + (1,) * (adjoint_y.ndim - 1)
    real = adjoint_y.real.dtype
    device = adjoint_y.device

    z = adjoint_y if x0 is None else x0
    x = z
    u = torch.zeros_like(adjoint_y)
    active = torch.ones(batch, dtype=torch.bool, device=device)
    iterations = torch.zeros(batch, dtype=torch.long, device=device)
    cg_iterations = torch.zeros(batch, dtype=torch.long, device=device)
    change = torch.full((batch,), math.inf, dtype=real, device=device)
    previous_rho = None
    for rho_value in rhos.tolist():
        if not bool(active.any()):
            break
        rho = torch.full((batch,), rho_value, dtype=real, device=device)
        if dual and previous_rho is not None:
            u = u * (previous_rho / rho_value)
        previous_rho = rho_value
        new_x, cg_info = conjugate_gradient(
            system.normal,
            adjoint_y + rho.reshape(shape) * (z - u),
            x0=x,
            tol=cg_tol,
            max_iter=cg_max_iter,
            damping=rho,
            on_failure="ignore",
        )
        new_z = prox(new_x + u, (1 / rho).reshape(shape))
        keep = active.reshape(shape)
        change = torch.where(active, relative_change(new_z, z), change)
        if dual:
            u = torch.where(keep, u + new_x - new_z, u)
        x, z = torch.where(keep, new_x, x), torch.where(keep, new_z, z)
        iterations = iterations + active.long()
        cg_iterations = cg_iterations + torch.where(active, cg_info.iterations, 0)
        active = active & (change > tol)

    norm_z = z.detach().abs().flatten(1).norm(dim=1)
    primal = (x - z).detach().abs().flatten(1).norm(dim=1) / torch.where(norm_z > 0, norm_z, 1.0)
    info = SplittingInfo(
        iterations=iterations,
        relative_residual=change.detach(),
        converged=change <= tol,
        primal_residual=primal,
        cg_iterations=cg_iterations,
    )
    check_convergence(
        "admm" if dual else "hqs",
        iterations,
        info.relative_residual,
        info.converged,
        tol,
        on_failure if tol > 0 else "ignore",
    )
    return x, z, info
