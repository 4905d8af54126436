"""How iterative solvers report a solve that did not converge.

Every iterative Optimization block (conjugate gradient, fixed-point solvers) checks its result the
same way, through :func:`check_convergence`:

* a **non-finite residual** (NaN or infinity) raises :class:`ConvergenceError`: the iterate is
  garbage and, inside a training step, would silently poison the weights;
* a **tolerance not reached** within ``max_iter`` iterations (or a residual that grew) emits a
  :class:`ConvergenceWarning` naming the solver, the iteration count and the residual; the result
  is still returned, since a fixed iteration budget (MoDL's CG steps) is often deliberate.

``on_failure`` selects what a missed tolerance does: ``"warn"`` (default), ``"raise"`` or
``"ignore"`` (for a deliberately fixed budget). A non-finite residual raises in every mode.

Every solve also returns the same per-sample record, a :class:`SolveInfo` (``iterations``,
``relative_residual``, ``converged``), whose :meth:`SolveInfo.summary` gives the numbers Recons log
as diagnostics.

A solver inside a training loop may miss its tolerance at every step; so that the console stays
readable, the warnings of one solver are emitted at its 1st, 10th, 100th, ... miss, each saying how
many there were (the residuals of every step are in the logged diagnostics).
:func:`reset_convergence_warnings` starts the count again.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from typing import Literal

import torch

from deepinv_lab.errors import UserError

OnFailure = Literal["warn", "raise", "ignore"]
ON_FAILURE = ("warn", "raise", "ignore")


_misses: Counter[str] = Counter()


class SolveInfo:
    """What every iterative solve reports, per sample (detached tensors of shape ``(B,)``):
    ``iterations``, ``relative_residual`` (the solver's own relative measure, see its module) and
    ``converged`` (``relative_residual <= tol``). Solvers' info dataclasses derive from it and add
    their own fields."""

    iterations: torch.Tensor
    relative_residual: torch.Tensor
    converged: torch.Tensor

    def summary(self, prefix: str = "") -> dict[str, float]:
        """``{prefix}iterations`` (mean over the batch) and ``{prefix}relative_residual`` (worst
        sample), the numbers a Recon reports in its diagnostics."""
        return {
            f"{prefix}iterations": float(self.iterations.double().mean()),
            f"{prefix}relative_residual": float(self.relative_residual.max()),
        }


def per_sample(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-sample ``values`` ``(B,)`` reshaped to broadcast against ``like`` ``(B, ...)``."""
    return values.reshape(-1, *([1] * (like.ndim - 1)))


def relative_change(new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """``||new - old|| / ||new||`` per sample ``(B,)``, detached: the stopping measure of the
    first-order solvers (FISTA, PDHG)."""
    tiny = torch.finfo(new.real.dtype).tiny
    change = (new - old).abs().flatten(1).norm(dim=1)
    return (change / new.abs().flatten(1).norm(dim=1).clamp_min(tiny)).detach()


def reset_convergence_warnings() -> None:
    """Forget how many misses each solver had: the next one warns again."""
    _misses.clear()


class ConvergenceWarning(UserWarning):
    """An iterative solve stopped at ``max_iter`` before reaching its tolerance."""


class ConvergenceError(FloatingPointError):
    """An iterative solve produced a non-finite residual (or missed its tolerance with
    ``on_failure="raise"``)."""


def check_on_failure(on_failure: str, owner: str) -> None:
    """Raise a ValueError naming ``owner`` unless ``on_failure`` is one of :data:`ON_FAILURE`."""
    if on_failure not in ON_FAILURE:
        raise UserError(f"{owner}: on_failure must be one of {ON_FAILURE}, got {on_failure!r}")


def check_convergence(
    solver: str,
    iterations: torch.Tensor,
    relative_residual: torch.Tensor,
    converged: torch.Tensor,
    tol: float,
    on_failure: OnFailure = "warn",
) -> None:
    """Report samples that did not converge; see the module docstring.

    Args:
        solver: name used in the message, e.g. ``"conjugate_gradient"``.
        iterations, relative_residual, converged: per-sample ``(B,)`` tensors of the solve.
        tol: the tolerance ``relative_residual`` was compared with.
        on_failure: ``"warn"``, ``"raise"`` or ``"ignore"``.
    """
    finite = torch.isfinite(relative_residual)
    if not bool(finite.all()):
        bad = int((~finite).nonzero()[0, 0])
        raise ConvergenceError(
            f"{solver}: non-finite residual ({float(relative_residual[bad])}) for sample {bad} "
            f"after {int(iterations[bad])} iterations; check the inputs, the step sizes and that "
            "the operator is positive definite / the iteration is contractive"
        )
    if on_failure == "ignore" or bool(converged.all()):
        return
    unconverged = torch.where(converged, torch.zeros_like(relative_residual), relative_residual)
    worst = int(torch.argmax(unconverged))
    message = (
        f"{solver}: {int((~converged).sum())} of {converged.numel()} samples did not reach "
        f"tol={tol:g}; worst: sample {worst} at residual {float(relative_residual[worst]):.3e} "
        f"after {int(iterations[worst])} iterations"
    )
    if on_failure == "raise":
        raise ConvergenceError(message)
    _misses[solver] += 1
    count = _misses[solver]
    if math.log10(count).is_integer():
        if count > 1:
            message += f" ({count} solves of {solver} missed their tolerance so far)"
        warnings.warn(message, ConvergenceWarning, stacklevel=3)
