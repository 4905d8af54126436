"""Fixed-point solvers for batches: find ``x`` with ``x = f(x)`` for every sample at once.

:func:`picard` (relaxed fixed-point iteration) and :func:`anderson` (type-II Anderson
acceleration) solve ``x = f(x)`` where ``f`` maps a batch ``(B, ...)`` to a batch of the same
shape and dtype, real or complex, acting on each sample separately. :func:`solve_fixed_point`
dispatches between them and reports a failed solve through
:func:`~deepinv_lab.optim.convergence.check_convergence`.

Convergence is measured per sample by the **relative residual**

    ``r(x) = ||f(x) - x|| / (||f(x)|| + eps)``

(Euclidean norms over all of a sample's entries, real and imaginary parts alike; ``eps`` is the
smallest positive normal number of the dtype, so ``x = f(x) = 0`` counts as converged). Being
relative, it does not depend on the scale of the images; a map whose fixed point is ``0`` itself
is the exception (``r`` stays near ``||f(x) - x|| / ||f(x)||`` as ``x -> 0``), so shift such a
problem. A sample whose residual is at most ``tol`` is **frozen**: its iterate no longer changes
while the others go on, and the loop ends when every sample has converged or after ``max_iter``
updates. The returned ``x`` is the last iterate of each sample, and ``info.relative_residual`` is
the residual of that very ``x``.

``f`` is always applied to the whole batch (it typically closes over per-sample data such as
measurements ``y`` or a System, which cannot be subset), so a frozen sample still costs compute;
its ``f`` value is simply not used. A solve costs at most ``max_iter + 1`` evaluations of ``f``.

The solvers run under :func:`torch.no_grad`: they are meant for the forward pass of a deep
equilibrium model and for the adjoint fixed point of its backward pass (see
:mod:`deepinv_lab.optim.deq`), where no graph through the iterations is wanted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from numbers import Real

import torch

from deepinv_lab.errors import UserError
from deepinv_lab.optim.convergence import (
    OnFailure,
    SolveInfo,
    check_convergence,
    check_on_failure,
)

FixedPointMap = Callable[[torch.Tensor], torch.Tensor]
SOLVERS = ("anderson", "picard")


@dataclass(frozen=True)
class FixedPointInfo(SolveInfo):
    """What a fixed-point solve did, per sample (detached tensors of shape ``(B,)``).

    Attributes:
        iterations: updates applied to the sample's iterate (0 if ``x0`` already satisfied
            ``tol``); the sample was frozen afterwards.
        relative_residual: ``||f(x) - x|| / (||f(x)|| + eps)`` of the returned ``x`` (see the
            module docstring).
        converged: whether ``relative_residual <= tol``.
        history: the largest relative residual over the batch before the first update and after each
            update (``len(history) = iterations.max() + 1``); a plain list of floats for plots
            and benchmarks.
    """

    iterations: torch.Tensor
    relative_residual: torch.Tensor
    converged: torch.Tensor
    history: list[float] = field(default_factory=list)


def check_fixed_point_args(
    owner: str,
    tol: float,
    max_iter: int,
    relaxation: float,
    memory: int = 1,
    regularization: float = 0.0,
    names: Mapping[str, str] | None = None,
) -> None:
    """Raise a :class:`~deepinv_lab.errors.UserError` naming ``owner`` and the first invalid
    argument; ``names`` renames arguments in the message to the caller's (config) keys, e.g.
    ``{"memory": "anderson_memory"}``."""
    names = names or {}

    def fail(name: str, expected: str, value: object) -> UserError:
        return UserError(f"{owner}: {names.get(name, name)} must be {expected}, got {value!r}")

    if isinstance(tol, bool) or not isinstance(tol, Real) or not tol >= 0:
        raise fail("tol", "a number >= 0", tol)
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise fail("max_iter", "an integer >= 1", max_iter)
    if isinstance(relaxation, bool) or not isinstance(relaxation, Real) or not 0 < relaxation <= 1:
        raise fail("relaxation", "a number in (0, 1]", relaxation)
    if isinstance(memory, bool) or not isinstance(memory, int) or memory < 1:
        raise fail("memory", "an integer >= 1", memory)
    if (
        isinstance(regularization, bool)
        or not isinstance(regularization, Real)
        or not regularization >= 0
    ):
        raise fail("regularization", "a number >= 0", regularization)


def _check_x0(owner: str, x0: torch.Tensor) -> None:
    if not isinstance(x0, torch.Tensor) or x0.ndim < 1:
        shape = tuple(x0.shape) if isinstance(x0, torch.Tensor) else type(x0).__name__
        raise ValueError(
            f"{owner}: x0 must be a tensor with a batch dimension (B, ...), got {shape}"
        )
    if not (x0.is_floating_point() or x0.is_complex()):
        raise ValueError(f"{owner}: x0 must be a real or complex floating tensor, got {x0.dtype}")


def _flatten(x: torch.Tensor) -> torch.Tensor:
    """``(B, ...)`` real or complex -> ``(B, N)`` real (real and imaginary parts interleaved)."""
    flat = x.reshape(x.shape[0], -1)
    if flat.is_complex():
        flat = torch.view_as_real(flat.contiguous()).reshape(x.shape[0], -1)
    return flat


def _unflatten(flat: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`_flatten`: ``(B, N)`` real -> the shape and dtype of ``like``."""
    if like.is_complex():
        flat = torch.view_as_complex(flat.reshape(like.shape[0], -1, 2).contiguous())
    return flat.reshape(like.shape)


def _apply(owner: str, f: FixedPointMap, x: torch.Tensor) -> torch.Tensor:
    """``f(x)``, checked to keep the shape and dtype of ``x``."""
    fx = f(x)
    if not isinstance(fx, torch.Tensor) or fx.shape != x.shape or fx.dtype != x.dtype:
        got = (fx.dtype, tuple(fx.shape)) if isinstance(fx, torch.Tensor) else type(fx).__name__
        raise ValueError(
            f"{owner}: f must return a tensor of the input's dtype and shape "
            f"({x.dtype}, {tuple(x.shape)}), got {got}"
        )
    return fx


def _relative_residual(x: torch.Tensor, fx: torch.Tensor) -> torch.Tensor:
    """``||fx - x|| / (||fx|| + eps)`` per sample of flattened real ``(B, N)`` tensors."""
    eps = torch.finfo(x.dtype).tiny
    return torch.linalg.vector_norm(fx - x, dim=1) / (torch.linalg.vector_norm(fx, dim=1) + eps)


class _Loop:
    """Per-sample bookkeeping shared by the solvers: residuals, freezing, counts, history."""

    def __init__(self, x: torch.Tensor, fx: torch.Tensor, tol: float):
        self.tol = tol
        self.residual = _relative_residual(x, fx)
        # NaN compares False: a NaN sample stops (and is reported as not converged).
        self.active = self.residual > tol
        self.iterations = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        self.history: list[float] = []
        self._any_active = self._record()

    def _record(self) -> bool:
        """Append the batch's largest residual; return whether a sample is still active
        (one host synchronisation per iteration)."""
        worst, any_active = torch.stack(
            [self.residual.max(), self.active.any().to(self.residual.dtype)]
        ).tolist()
        self.history.append(worst)
        return bool(any_active)

    @property
    def running(self) -> bool:
        return self._any_active

    def update(
        self, x: torch.Tensor, fx: torch.Tensor, x_new: torch.Tensor, fx_new: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Accept ``x_new, fx_new`` for the active samples only; refresh the residuals."""
        active = self.active[:, None]
        x = torch.where(active, x_new, x)
        fx = torch.where(active, fx_new, fx)
        self.iterations += self.active.long()
        self.residual = torch.where(self.active, _relative_residual(x, fx), self.residual)
        self.active = self.active & (self.residual > self.tol)
        self._any_active = self._record()
        return x, fx

    def info(self) -> FixedPointInfo:
        return FixedPointInfo(
            iterations=self.iterations,
            relative_residual=self.residual,
            converged=self.residual <= self.tol,
            history=self.history,
        )


@torch.no_grad()
def picard(
    f: FixedPointMap,
    x0: torch.Tensor,
    tol: float = 1e-3,
    max_iter: int = 50,
    relaxation: float = 1.0,
) -> tuple[torch.Tensor, FixedPointInfo]:
    """Relaxed fixed-point (Picard / Krasnosel'skii-Mann) iteration
    ``x <- (1 - relaxation) x + relaxation f(x)``, per sample of a batch.

    Converges linearly for a contractive ``f`` (rate: its Lipschitz constant); ``relaxation < 1``
    also makes averaged non-expansive maps converge.

    Args:
        f: ``(B, ...) -> (B, ...)``, same shape and dtype, acting on each sample separately.
        x0: initial iterate ``(B, ...)``, real or complex.
        tol: freeze a sample once its relative residual is at most ``tol``.
        max_iter: updates at most (``>= 1``).
        relaxation: ``beta`` in ``(0, 1]``.

    Returns:
        ``(x, info)``: the iterate shaped like ``x0`` and a :class:`FixedPointInfo`. No warning
        is issued here; :func:`solve_fixed_point` checks the info.
    """
    check_fixed_point_args("picard", tol, max_iter, relaxation)
    _check_x0("picard", x0)
    x = _flatten(x0)
    fx = _flatten(_apply("picard", f, x0))
    loop = _Loop(x, fx, tol)
    for _ in range(max_iter):
        if not loop.running:
            break
        x_new = fx if relaxation == 1 else torch.lerp(x, fx, relaxation)
        fx_new = _flatten(_apply("picard", f, _unflatten(x_new, x0)))
        x, fx = loop.update(x, fx, x_new, fx_new)
    return _unflatten(x, x0), loop.info()


@torch.no_grad()
def anderson(
    f: FixedPointMap,
    x0: torch.Tensor,
    tol: float = 1e-3,
    max_iter: int = 50,
    memory: int = 5,
    regularization: float = 1e-4,
    relaxation: float = 1.0,
) -> tuple[torch.Tensor, FixedPointInfo]:
    """Type-II Anderson acceleration (Walker & Ni, 2011) of ``x = f(x)``, per sample of a batch.

    With the last ``m = min(k + 1, memory)`` iterates ``x_i``, their images ``f_i = f(x_i)`` and
    residuals ``g_i = f_i - x_i`` (flattened to real vectors), each sample solves the small
    constrained least-squares problem

        ``alpha = argmin ||sum_i alpha_i g_i||^2 + lambda ||alpha||^2  s.t.  sum_i alpha_i = 1``

    through its ``(m + 1) x (m + 1)`` KKT system ``[[0, 1^T], [1, G G^T + lambda I]]`` (batched,
    in float64), and steps to ``x <- relaxation * sum_i alpha_i f_i + (1 - relaxation) *
    sum_i alpha_i x_i``. ``lambda = regularization * mean_i ||g_i||^2``, a Tikhonov weight
    relative to the Gram matrix so that it does not depend on the scale of the images. With
    ``memory=1`` this is :func:`picard`. A sample whose small system cannot be solved (singular,
    non-finite) takes a plain relaxed Picard step instead.

    Args:
        f: ``(B, ...) -> (B, ...)``, same shape and dtype, acting on each sample separately.
        x0: initial iterate ``(B, ...)``, real or complex.
        tol: freeze a sample once its relative residual is at most ``tol``.
        max_iter: updates at most (``>= 1``).
        memory: number of past iterates combined (``>= 1``).
        regularization: relative Tikhonov weight ``>= 0`` of the least-squares problem.
        relaxation: ``beta`` in ``(0, 1]``.

    Returns:
        ``(x, info)``: the iterate shaped like ``x0`` and a :class:`FixedPointInfo`. Memory:
        ``2 * memory`` copies of the batch are kept.
    """
    check_fixed_point_args("anderson", tol, max_iter, relaxation, memory, regularization)
    _check_x0("anderson", x0)
    x = _flatten(x0)
    fx = _flatten(_apply("anderson", f, x0))
    loop = _Loop(x, fx, tol)
    batch, size = x.shape
    past_x = x.new_zeros(batch, memory, size)
    past_f = x.new_zeros(batch, memory, size)
    for k in range(max_iter):
        if not loop.running:
            break
        slot, filled = k % memory, min(k + 1, memory)
        past_x[:, slot] = x
        past_f[:, slot] = fx
        xs, fs = past_x[:, :filled], past_f[:, :filled]
        alpha = _anderson_weights(fs - xs, regularization, slot)  # (B, filled)
        mixed_f = torch.bmm(alpha[:, None].to(fs.dtype), fs)[:, 0]
        if relaxation == 1:
            x_new = mixed_f
        else:
            mixed_x = torch.bmm(alpha[:, None].to(xs.dtype), xs)[:, 0]
            x_new = torch.lerp(mixed_x, mixed_f, relaxation)
        fx_new = _flatten(_apply("anderson", f, _unflatten(x_new, x0)))
        x, fx = loop.update(x, fx, x_new, fx_new)
    return _unflatten(x, x0), loop.info()


def _anderson_weights(residuals: torch.Tensor, regularization: float, newest: int) -> torch.Tensor:
    """Weights ``alpha`` ``(B, m)`` (float64, summing to 1) of the Anderson mixing, from the
    residuals ``g_i`` ``(B, m, N)``; ``newest`` is the slot of the latest iterate (the buffer is
    a ring)."""
    batch, m, _ = residuals.shape
    if m == 1:
        return residuals.new_ones(batch, 1, dtype=torch.float64)
    gram = torch.bmm(residuals, residuals.transpose(1, 2)).to(torch.float64)
    diag = torch.diagonal(gram, dim1=1, dim2=2)
    scale = diag.mean(1).clamp_min(torch.finfo(torch.float64).tiny)
    kkt = gram.new_zeros(batch, m + 1, m + 1)
    kkt[:, 0, 1:] = 1
    kkt[:, 1:, 0] = 1
    kkt[:, 1:, 1:] = gram + (regularization * scale)[:, None, None] * torch.eye(
        m, dtype=gram.dtype, device=gram.device
    )
    rhs = gram.new_zeros(batch, m + 1, 1)
    rhs[:, 0] = 1
    solution, status = torch.linalg.solve_ex(kkt, rhs)
    alpha = solution[:, 1:, 0]
    ok = (status == 0) & torch.isfinite(alpha).all(1)
    # Fallback: a plain (relaxed) Picard step from the newest iterate.
    fallback = torch.zeros_like(alpha)
    fallback[:, newest] = 1
    return torch.where(ok[:, None], alpha, fallback)


def solve_fixed_point(
    f: FixedPointMap,
    x0: torch.Tensor,
    solver: str = "anderson",
    tol: float = 1e-3,
    max_iter: int = 50,
    relaxation: float = 1.0,
    memory: int = 5,
    regularization: float = 1e-4,
    on_failure: OnFailure = "warn",
    name: str | None = None,
) -> tuple[torch.Tensor, FixedPointInfo]:
    """Solve ``x = f(x)`` per sample with :func:`anderson` or :func:`picard`, then check the
    result with :func:`~deepinv_lab.optim.convergence.check_convergence`.

    Args:
        f: ``(B, ...) -> (B, ...)``, same shape and dtype, acting on each sample separately.
        x0: initial iterate ``(B, ...)``, real or complex.
        solver: ``"anderson"`` or ``"picard"``.
        tol, max_iter, relaxation: as in :func:`picard`.
        memory, regularization: Anderson only (ignored by Picard, but still validated).
        on_failure: what a sample missing ``tol`` does: ``"warn"`` (a
            :class:`~deepinv_lab.optim.convergence.ConvergenceWarning`, rate-limited per solver
            name as described in :mod:`~deepinv_lab.optim.convergence`), ``"raise"`` or
            ``"ignore"``. A non-finite residual raises
            :class:`~deepinv_lab.optim.convergence.ConvergenceError` in every mode.
        name: the solve's name in warnings and errors (and for their rate limit); ``solver``
            when ``None``.

    Returns:
        ``(x, info)`` as returned by the solver.
    """
    if solver not in SOLVERS:
        raise UserError(f"solve_fixed_point: solver must be one of {SOLVERS}, got {solver!r}")
    check_on_failure(on_failure, "solve_fixed_point")
    check_fixed_point_args("solve_fixed_point", tol, max_iter, relaxation, memory, regularization)
    if solver == "anderson":
        x, info = anderson(f, x0, tol, max_iter, memory, regularization, relaxation)
    else:
        x, info = picard(f, x0, tol, max_iter, relaxation)
    check_convergence(
        name or solver, info.iterations, info.relative_residual, info.converged, tol, on_failure
    )
    return x, info
