"""Conjugate gradient for batches of Hermitian positive (semi-)definite systems.

:func:`conjugate_gradient` solves ``(A + damping I) x = b`` for every sample of a batch at once,
where ``A`` is any callable applying a Hermitian positive semi-definite operator sample by sample
(typically a System's normal operator ``A^H A``). Samples converge independently: once a sample's
relative residual ``||r|| / ||b||`` is at most ``tol`` its step size is masked to zero, so its
iterate no longer changes while the others go on, and the loop ends when all samples have
converged or after ``max_iter`` iterations.

Two ways to differentiate the solution ``x = M^{-1} b`` with ``M = A + damping I``:

* ``backward="autograd"``: the iterations are plain differentiable tensor operations (no in-place
  updates of tensors autograd needs), so gradients with respect to ``b``, ``x0``, ``damping`` and
  anything ``A`` closes over (coil maps, network outputs, a learned weight) flow by
  backpropagation through the iterations; memory grows with the number of iterations.
* ``backward="implicit"``: the forward solve runs without recording a graph; the output is
  ``x* + S(b - M x*)`` where ``S`` returns zeros in the forward pass and, in the backward pass,
  solves ``M v = g`` by the same CG (``M`` is Hermitian, so ``M^{-H} = M^{-1}``). Backpropagating
  ``v`` through the recorded residual ``b - M x*`` gives ``dL/db = v`` and, for parameters
  ``theta`` of ``M``, ``-Re<v, (dM/dtheta) x*>``: the implicit-function-theorem gradient. Memory
  is that of one application of ``M``, whatever the number of iterations; the gradient equals
  autograd's to the tolerance of the two solves. Gradients with respect to ``x0`` are zero (the
  solution does not depend on the start), and double backward is not supported.

A solve that misses its tolerance emits a
:class:`~deepinv_lab.optim.convergence.ConvergenceWarning`, a non-finite residual raises a
:class:`~deepinv_lab.optim.convergence.ConvergenceError` (``on_failure``, see
:mod:`deepinv_lab.optim.convergence`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from numbers import Real
from typing import Literal

import torch

from deepinv_lab.errors import UserError
from deepinv_lab.optim.convergence import (
    OnFailure,
    SolveInfo,
    check_convergence,
    check_on_failure,
)

LinearOperator = Callable[[torch.Tensor], torch.Tensor]


#: The config keys of the CG options of Recons that run CG inside (MoDL, DEQ), for
#: :func:`check_cg_args`'s messages.
CG_OPTION_NAMES = {"tol": "cg_tol", "max_iter": "cg_max_iter", "backward": "cg_backward"}


def check_cg_args(
    owner: str,
    tol: float,
    max_iter: int,
    backward: str = "autograd",
    names: Mapping[str, str] | None = None,
) -> None:
    """Raise a :class:`~deepinv_lab.errors.UserError` naming ``owner`` and the first invalid
    option of a CG solve; ``names`` renames arguments in the message to the caller's (config)
    keys, e.g. ``{"tol": "cg_tol"}``."""
    names = names or {}
    if isinstance(tol, bool) or not isinstance(tol, Real) or tol < 0:
        raise UserError(f"{owner}: {names.get('tol', 'tol')} must be a number >= 0, got {tol!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 0:
        raise UserError(
            f"{owner}: {names.get('max_iter', 'max_iter')} must be an integer >= 0, "
            f"got {max_iter!r}"
        )
    if backward not in ("autograd", "implicit"):
        raise UserError(
            f"{owner}: {names.get('backward', 'backward')} must be 'autograd' or 'implicit', "
            f"got {backward!r}"
        )


@dataclass(frozen=True)
class CGInfo(SolveInfo):
    """What a conjugate-gradient solve did, per sample (detached tensors of shape ``(B,)``).

    Attributes:
        iterations: iterations in which the sample was still updated (0 if ``x0`` already solved).
        residual_norm: ``||b - (A + damping I) x||`` of the returned ``x``, from the CG recursion.
        relative_residual: ``residual_norm / ||b||`` (``residual_norm`` where ``b = 0``).
        converged: whether ``relative_residual <= tol``.
    """

    iterations: torch.Tensor
    residual_norm: torch.Tensor
    relative_residual: torch.Tensor
    converged: torch.Tensor


def conjugate_gradient(
    normal_op: LinearOperator,
    rhs: torch.Tensor,
    x0: torch.Tensor | None = None,
    tol: float = 1e-6,
    max_iter: int = 100,
    damping: float | torch.Tensor = 0.0,
    backward: Literal["autograd", "implicit"] = "autograd",
    on_failure: OnFailure = "warn",
    on_backward: Callable[[CGInfo], None] | None = None,
) -> tuple[torch.Tensor, CGInfo]:
    """Solve ``(normal_op + damping I) x = rhs`` by conjugate gradient, per sample of a batch.

    Args:
        normal_op: ``x -> A x`` for a Hermitian positive semi-definite ``A`` that acts on each
            sample separately (block-diagonal over the batch), e.g. ``system.normal``.
        rhs: ``b``, real or complex, with a leading batch dimension ``(B, ...)``.
        x0: initial guess shaped like ``rhs`` (zeros when ``None``).
        tol: stop a sample once ``||r|| / ||b|| <= tol``.
        max_iter: iterations at most (``>= 0``).
        damping: ``lambda >= 0`` of ``(A + lambda I)``: a number, a 0-d tensor or a ``(B,)``
            tensor (one value per sample). ``A + lambda I`` must be positive definite for a unique
            solution (or, with ``lambda = 0`` and ``x0 = None``, CG finds the minimum-norm one).
        backward: ``"autograd"`` (backpropagate through the iterations) or ``"implicit"`` (solve
            the adjoint system by CG in the backward pass; memory independent of the iteration
            count). See the module docstring.
        on_failure: ``"warn"`` (default), ``"raise"`` or ``"ignore"`` when the tolerance is not
            reached; a non-finite residual raises unless ``"ignore"``.
        on_backward: with ``backward="implicit"``, called with the :class:`CGInfo` of each
            backward solve (for logging).

    Returns:
        ``(x, info)``: the solution shaped like ``rhs`` and a :class:`CGInfo`.
    """
    if rhs.ndim < 1:
        raise ValueError("conjugate_gradient expects rhs with a batch dimension, got shape ()")
    if x0 is not None and (x0.shape != rhs.shape or x0.dtype != rhs.dtype):
        raise ValueError(
            f"conjugate_gradient: x0 must match rhs, got x0 {x0.dtype} {tuple(x0.shape)} "
            f"and rhs {rhs.dtype} {tuple(rhs.shape)}"
        )
    check_cg_args("conjugate_gradient", tol, max_iter, backward)
    check_on_failure(on_failure, "conjugate_gradient")
    operator = _damped(normal_op, damping, rhs)
    if backward == "autograd" or not torch.is_grad_enabled():
        x, info = cg_iterations(operator, rhs, x0, tol, max_iter)
    else:
        with torch.no_grad():
            start = None if x0 is None else x0.detach()
            x, info = cg_iterations(operator, rhs.detach(), start, tol, max_iter)
        # Recorded: b - M x*, zero up to the tolerance, differentiable in b and M's parameters.
        residual = rhs - operator(x)
        x = x + _ImplicitSolve.apply(residual, operator, tol, max_iter, on_failure, on_backward)
    _report(info, tol, on_failure, "conjugate_gradient")
    return x, info


def _report(info: CGInfo, tol: float, on_failure: OnFailure, solver: str) -> None:
    check_convergence(
        solver, info.iterations, info.relative_residual, info.converged, tol, on_failure
    )


class _ImplicitSolve(torch.autograd.Function):
    """Zeros in the forward pass; ``g -> M^{-1} g`` (by CG) in the backward pass."""

    @staticmethod
    def forward(ctx, residual, operator, tol, max_iter, on_failure, on_backward):
        ctx.operator, ctx.tol, ctx.max_iter = operator, tol, max_iter
        ctx.on_failure, ctx.on_backward = on_failure, on_backward
        return torch.zeros_like(residual)

    @staticmethod
    def backward(ctx, grad):
        with torch.no_grad():
            solution, info = cg_iterations(ctx.operator, grad, None, ctx.tol, ctx.max_iter)
        _report(info, ctx.tol, ctx.on_failure, "conjugate_gradient (implicit backward)")
        if ctx.on_backward is not None:
            ctx.on_backward(info)
        return solution, None, None, None, None, None


def _damped(
    normal_op: LinearOperator, damping: float | torch.Tensor, rhs: torch.Tensor
) -> LinearOperator:
    """``x -> normal_op(x) + damping x`` with ``damping`` shaped to broadcast per sample."""
    if isinstance(damping, torch.Tensor):
        if damping.ndim == 1 and damping.shape[0] == rhs.shape[0]:
            damping = damping.reshape(-1, *([1] * (rhs.ndim - 1)))
        elif damping.ndim != 0:
            raise ValueError(
                "conjugate_gradient: damping must be a number, a 0-d tensor or one value per "
                f"sample ({rhs.shape[0]},), got shape {tuple(damping.shape)}"
            )
        if bool((damping.detach() < 0).any()):
            raise ValueError("conjugate_gradient: damping must be >= 0")
        damping = damping.to(device=rhs.device, dtype=rhs.real.dtype)
    else:
        if not isinstance(damping, Real) or damping < 0:
            raise UserError(f"conjugate_gradient: damping must be a number >= 0, got {damping!r}")
        if damping == 0:
            return normal_op

    def operator(x: torch.Tensor) -> torch.Tensor:
        return normal_op(x) + damping * x

    return operator


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Real part of ``<a, b>`` per sample, shape ``(B,)``: real for Hermitian forms."""
    return (a.conj() * b).real.flatten(1).sum(1)


def cg_iterations(
    operator: LinearOperator,
    rhs: torch.Tensor,
    x0: torch.Tensor | None,
    tol: float,
    max_iter: int,
) -> tuple[torch.Tensor, CGInfo]:
    """The CG recursion with per-sample masking; ``operator`` already includes any damping.

    Converged samples get step size 0 and keep their search direction, so their ``x`` and ``r``
    stay fixed; ``torch.where`` (not in-place writes) keeps the graph differentiable, and divisions
    use safe denominators so that the masked branch never produces NaN gradients.
    """
    batch_shape = (rhs.shape[0],) + (1,) * (rhs.ndim - 1)
    rhs_norm = _dot(rhs, rhs).sqrt().detach()
    # b = 0 has the solution x = 0: compare absolute residuals to tol there.
    scale = torch.where(rhs_norm > 0, rhs_norm, torch.ones_like(rhs_norm))

    if x0 is None:
        x = torch.zeros_like(rhs)
        residual = rhs
    else:
        x = x0
        residual = rhs - operator(x0)
    direction = residual
    residual_sq = _dot(residual, residual)
    active = residual_sq.detach().sqrt() / scale > tol
    iterations = torch.zeros(rhs.shape[0], dtype=torch.long, device=rhs.device)

    for _ in range(max_iter):
        if not bool(active.any()):
            break
        image = operator(direction)
        curvature = _dot(direction, image)
        # Only active samples divide; inactive ones (and a zero curvature) get alpha = 0.
        usable = active & (curvature.detach() > 0)
        alpha = torch.where(
            usable, residual_sq / torch.where(usable, curvature, torch.ones_like(curvature)), 0.0
        )
        alpha = alpha.reshape(batch_shape)
        x = x + alpha * direction
        residual = residual - alpha * image
        new_residual_sq = _dot(residual, residual)
        beta = torch.where(
            usable,
            new_residual_sq / torch.where(usable, residual_sq, torch.ones_like(residual_sq)),
            0.0,
        ).reshape(batch_shape)
        direction = torch.where(usable.reshape(batch_shape), residual + beta * direction, direction)
        residual_sq = torch.where(usable, new_residual_sq, residual_sq)
        iterations = iterations + usable.long()
        active = usable & (residual_sq.detach().sqrt() / scale > tol)

    residual_norm = residual_sq.detach().sqrt()
    relative = residual_norm / scale
    info = CGInfo(
        iterations=iterations,
        residual_norm=residual_norm,
        relative_residual=relative,
        converged=relative <= tol,
    )
    return x, info
