"""Regularisation by denoising (RED, Romano, Elad & Milanfar, SIAM J. Imaging Sci. 2017) in its
gradient form, per sample of a batch.

RED minimises ``1/2 ||A x - y||^2 + rho/2 x^T (x - D(x))``; for a denoiser ``D`` that is locally
homogeneous with a symmetric Jacobian its gradient is ``A^H (A x - y) + rho (x - D(x))``, and
iteration ``k`` is the descent step

    x_k = x_{k-1} - s (A^H (A x_{k-1} - y) + rho (x_{k-1} - D(x_{k-1}))),

with ``s = 1 / (L + rho)`` by default, ``L`` the largest eigenvalue of ``A^H A`` (power
iteration). The fixed-point form, ``x_k = (A^H A + rho I)^{-1} (A^H y + rho D(x_{k-1}))``, is half
quadratic splitting with a constant penalty: :func:`~deepinv_lab.optim.splitting.admm` with
``dual=False``.

A sample stops once ``||x_k - x_{k-1}|| / ||x_k|| <= tol`` (0: run ``max_iter`` iterations).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from deepinv_lab.errors import UserError
from deepinv_lab.optim.cg import check_cg_args
from deepinv_lab.optim.convergence import (
    OnFailure,
    SolveInfo,
    check_convergence,
    per_sample,
    relative_change,
)
from deepinv_lab.optim.fista import power_iteration
from deepinv_lab.optim.least_squares import NormalOperator


@dataclass(frozen=True)
class REDInfo(SolveInfo):
    """What a RED gradient solve did, per sample (detached ``(B,)`` tensors): ``iterations``,
    ``relative_residual`` (the last relative change), ``converged`` and the ``step`` used."""

    iterations: torch.Tensor
    relative_residual: torch.Tensor
    converged: torch.Tensor
    step: torch.Tensor


def red_gradient(
    system: NormalOperator,
    y: torch.Tensor,
    denoise: Callable[[torch.Tensor], torch.Tensor],
    weight: float,
    step: float | None = None,
    max_iter: int = 50,
    tol: float = 0.0,
    x0: torch.Tensor | None = None,
    on_failure: OnFailure = "warn",
) -> tuple[torch.Tensor, REDInfo]:
    """RED by gradient descent; see the module docstring.

    Args:
        system: ``A`` with ``adjoint`` and ``normal``, per sample.
        y: measurements ``(B, ...)``.
        denoise: ``D``, shape-preserving on ``A^H y``.
        weight: ``rho > 0``.
        step: ``s > 0``; ``None``: ``1 / (L + rho)`` per sample.
        max_iter, tol: iterations at most, and the relative change that stops a sample.
        x0: the start (default ``A^H y``).
        on_failure: what a missed ``tol > 0`` does.

    Returns:
        ``(x, info)``.
    """
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight > 0:
        raise UserError(f"red_gradient: weight must be a number > 0, got {weight!r}")
    check_cg_args("red_gradient", tol, max_iter)
    adjoint_y = system.adjoint(y)
    batch = adjoint_y.shape[0]
    real, device = adjoint_y.real.dtype, adjoint_y.device
    if step is None:
        steps = 1 / (power_iteration(system.normal, adjoint_y) + weight)
    else:
        if isinstance(step, bool) or not isinstance(step, (int, float)) or not step > 0:
            raise UserError(f"red_gradient: step must be a number > 0, got {step!r}")
        steps = torch.full((batch,), float(step), dtype=real, device=device)
    steps = steps.to(real)
    step_b = per_sample(steps, adjoint_y)

    x = adjoint_y if x0 is None else x0
    active = torch.ones(batch, dtype=torch.bool, device=device)
    iterations = torch.zeros(batch, dtype=torch.long, device=device)
    change = torch.full((batch,), math.inf, dtype=real, device=device)
    for _ in range(max_iter):
        if not bool(active.any()):
            break
        gradient = system.normal(x) - adjoint_y + weight * (x - denoise(x))
        new_x = x - step_b * gradient
        change = torch.where(active, relative_change(new_x, x), change)
        x = torch.where(per_sample(active, x), new_x, x)
        iterations = iterations + active.long()
        active = active & (change > tol)
    info = REDInfo(iterations, change, change <= tol, steps.detach())
    if max_iter > 0:
        check_convergence(
            "red_gradient", iterations, change, info.converged, tol,
            on_failure if tol > 0 else "ignore",
        )  # fmt: skip
    return x, info
