"""FISTA: accelerated proximal gradient for ``1/2 ||A x - y||^2 + g(x)``, per sample of a batch.

With ``grad f(x) = A^H (A x - y)``, step ``s`` and ``t_0 = 1``, ``z_0 = x_0``, iteration ``k`` is

    x_k = prox_{s g}(z_{k-1} - s grad f(z_{k-1})),
    t_k = (1 + sqrt(1 + 4 t_{k-1}^2)) / 2,
    z_k = x_k + (t_{k-1} - 1) / t_k (x_k - x_{k-1})

(Beck & Teboulle, SIAM J. Imaging Sci. 2009), the iteration of SigPy's ``GradientMethod`` with
``accelerate=True``. It converges for ``s <= 1 / L``, ``L`` the largest eigenvalue of ``A^H A``;
by default ``L`` is estimated per sample by :func:`power_iteration`, as SigPy's ``MaxEig`` does
(30 iterations, no safety margin).

A sample stops once its relative change ``||x_k - x_{k-1}|| / ||x_k||`` is at most ``tol``: its
iterate is frozen while the others go on. ``tol = 0`` (SigPy's default) runs all ``max_iter``
iterations and reports no missed tolerance.

Given the regulariser's value ``g(x)`` (``regularizer``), the solve also reports the objective
``1/2 ||A x - y||^2 + g(x)`` of its result per sample, computed once after the last iteration
(one application of ``A``). Gradients flow by autograd through every iteration (a learned
weight inside ``prox``), so memory grows with ``max_iter``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from deepinv_lab.errors import UserError
from deepinv_lab.optim.cg import LinearOperator, check_cg_args
from deepinv_lab.optim.convergence import (
    OnFailure,
    SolveInfo,
    check_convergence,
    per_sample,
    relative_change,
)
from deepinv_lab.optim.least_squares import NormalOperator

#: ``prox(v, step) = argmin_x g(x) + ||x - v||^2 / (2 step)``, with ``step`` shaped ``(B, 1, ...)``
#: (one step per sample) to broadcast against ``v``.
Proximal = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: ``g(x)``, a regulariser's value per sample ``(B,)`` (weight included), for the objective.
Regularizer = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class FISTAInfo(SolveInfo):
    """What a FISTA solve did, per sample (detached tensors of shape ``(B,)``).

    Attributes:
        iterations: iterations in which the sample was still updated.
        relative_residual: the last relative change ``||x_k - x_{k-1}|| / ||x_k||``.
        converged: whether ``relative_residual <= tol``.
        step: the step size ``s`` used.
        objective: ``1/2 ||A x - y||^2 + g(x)`` of the returned ``x``, when the caller gave
            ``g`` (``None`` otherwise).
    """

    iterations: torch.Tensor
    relative_residual: torch.Tensor
    converged: torch.Tensor
    step: torch.Tensor
    objective: torch.Tensor | None = None

    def summary(self, prefix: str = "") -> dict[str, float]:
        """:meth:`SolveInfo.summary`, and ``{prefix}objective`` (mean over the batch) when
        known."""
        return summary_with_objective(super().summary(prefix), self.objective, prefix)


def summary_with_objective(
    summary: dict[str, float], objective: torch.Tensor | None, prefix: str
) -> dict[str, float]:
    """``summary`` with ``{prefix}objective``, the batch mean of ``objective``, when it is
    known."""
    if objective is not None:
        summary[f"{prefix}objective"] = float(objective.double().mean())
    return summary


def least_squares_objective(
    system: Callable[[torch.Tensor], torch.Tensor],
    y: torch.Tensor,
    x: torch.Tensor,
    regularizer: Regularizer,
) -> torch.Tensor:
    """``1/2 ||A x - y||^2 + g(x)`` per sample ``(B,)``, detached, ``g`` = ``regularizer``: the
    objective of the first-order solvers (FISTA, PDHG)."""
    with torch.no_grad():
        data = (system(x) - y).abs().square().flatten(1).sum(dim=1)
        return 0.5 * data + regularizer(x).to(data.dtype)


def power_iteration(
    normal_op: LinearOperator, like: torch.Tensor, iterations: int = 30, seed: int = 0
) -> torch.Tensor:
    """The largest eigenvalue of a Hermitian positive semi-definite ``normal_op`` (e.g.
    ``A^H A``), per sample: ``iterations`` steps of ``v <- N v / ||N v||`` from a seeded random
    ``v`` (the same for every sample of ``like`` ``(B, ...)``), then ``||N v||``.

    Returns a detached ``(B,)`` real tensor; the estimate approaches the eigenvalue from below,
    slowly where the top eigenvalues cluster (a 0/1-masked MRI operator: ~1e-3 low after 30
    steps)."""
    generator = torch.Generator(device=like.device).manual_seed(seed)
    # One start shared by all samples, so that a sample's estimate does not depend on its batch.
    v = torch.randn(like.shape[1:], dtype=like.dtype, device=like.device, generator=generator)
    v = v.expand(like.shape)
    with torch.no_grad():
        v = v / per_sample(v.abs().flatten(1).norm(dim=1), v)
        eigenvalue = torch.zeros(like.shape[0], dtype=like.real.dtype, device=like.device)
        for _ in range(iterations):
            image = normal_op(v)
            eigenvalue = image.abs().flatten(1).norm(dim=1)
            v = image / torch.where(eigenvalue > 0, eigenvalue, 1.0).reshape(
                -1, *([1] * (v.ndim - 1))
            )
    return eigenvalue


def check_positive_steps(solver: str, **steps: torch.Tensor) -> None:
    """A UserError naming the first of ``steps`` (per-sample ``(B,)`` tensors) with an entry that
    is not a finite number ``> 0``."""
    for name, values in steps.items():
        bad = ~(torch.isfinite(values) & (values > 0))
        if bool(bad.any()):
            value = float(values[bad.nonzero()[0, 0]])
            raise UserError(f"{solver}: {name} must be a finite number > 0, got {value!r}")


def fista(
    system: NormalOperator,
    y: torch.Tensor,
    prox: Proximal,
    step: float | torch.Tensor | None = None,
    max_iter: int = 100,
    tol: float = 0.0,
    x0: torch.Tensor | None = None,
    on_failure: OnFailure = "warn",
    regularizer: Regularizer | None = None,
) -> tuple[torch.Tensor, FISTAInfo]:
    """Minimise ``1/2 ||A x - y||^2 + g(x)`` by FISTA, per sample; see the module docstring.

    Args:
        system: the forward model ``A``, with ``adjoint(y)`` and ``normal(x)`` (``A^H A``), acting
            per sample of a batch (any :class:`~deepinv_lab.systems.LinearSystem`); called
            (``system(x) = A x``) only for the objective, when ``regularizer`` is given.
        y: measurements ``(B, ...)``.
        prox: ``prox(v, step)``, the proximal operator of ``step * g`` (see :data:`Proximal`).
        step: ``s > 0``: a number, or one value per sample ``(B,)``; ``None`` gives ``1 / L``
            with ``L`` from :func:`power_iteration` on ``A^H A``.
        max_iter: iterations at most (``>= 0``).
        tol: stop a sample once its relative change is at most ``tol`` (0: run ``max_iter``).
        x0: initial guess shaped like ``A^H y`` (zeros when ``None``).
        on_failure: what a missed ``tol > 0`` does (``"warn"``, ``"raise"``, ``"ignore"``); a
            non-finite change raises in every mode.
        regularizer: ``g(x)`` per sample ``(B,)``: given, ``info.objective`` holds
            ``1/2 ||A x - y||^2 + g(x)`` of the result.

    Returns:
        ``(x, info)``: ``x`` shaped like ``A^H y`` and a :class:`FISTAInfo`.
    """
    check_cg_args("fista", tol, max_iter)
    adjoint_y = system.adjoint(y)
    batch_shape = (adjoint_y.shape[0],) + (1,) * (adjoint_y.ndim - 1)
    real = adjoint_y.real.dtype
    if step is None:
        lipschitz = power_iteration(system.normal, adjoint_y)
        step = torch.where(lipschitz > 0, 1 / lipschitz, torch.ones_like(lipschitz))
    step = torch.as_tensor(step, dtype=real, device=adjoint_y.device).expand(adjoint_y.shape[0])
    check_positive_steps("fista", step=step)
    step_b = step.reshape(batch_shape)

    x = torch.zeros_like(adjoint_y) if x0 is None else x0
    z, t = x, 1.0
    active = torch.ones(adjoint_y.shape[0], dtype=torch.bool, device=adjoint_y.device)
    iterations = torch.zeros(adjoint_y.shape[0], dtype=torch.long, device=adjoint_y.device)
    change = torch.full((adjoint_y.shape[0],), math.inf, dtype=real, device=adjoint_y.device)
    for _ in range(max_iter):
        if not bool(active.any()):
            break
        new_x = prox(z - step_b * (system.normal(z) - adjoint_y), step_b)
        new_t = (1 + math.sqrt(1 + 4 * t * t)) / 2
        new_z = new_x + ((t - 1) / new_t) * (new_x - x)
        # Frozen samples keep x and z; torch.where (not in-place) keeps autograd intact.
        keep = active.reshape(batch_shape)
        new_change = relative_change(new_x, x)
        change = torch.where(active, new_change, change)
        x, z, t = torch.where(keep, new_x, x), torch.where(keep, new_z, z), new_t
        iterations = iterations + active.long()
        active = active & (change > tol)

    objective = None
    if regularizer is not None:
        objective = least_squares_objective(system, y, x, regularizer)
    info = FISTAInfo(
        iterations=iterations,
        relative_residual=change,
        converged=change <= tol,
        step=step,
        objective=objective,
    )
    if max_iter > 0:
        check_convergence(
            "fista",
            iterations,
            change,
            info.converged,
            tol,
            on_failure if tol > 0 else "ignore",
        )
    return x, info
