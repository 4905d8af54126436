"""PDHG (Chambolle-Pock) for total-variation regularised least squares, per sample of a batch.

Solves ``min_x 1/2 ||A x - y||^2 + lamda ||G x||`` with ``G`` the circular
:func:`~deepinv_lab.functional.gradient.finite_difference` and ``||.||`` the isotropic
``l_{1,2}`` norm (or, ``isotropic=False``, the anisotropic ``l_1`` norm). This is the splitting
of SigPy's ``TotalVariationRecon`` (``LinearLeastSquares`` with ``G`` and ``proxg``, solver
``PrimalDualHybridGradient``): the stacked operator ``K = [A; G]`` carries both terms into the
dual, ``F(K x) = 1/2 ||A x - y||^2 + lamda ||G x||``, and the primal term is zero. With dual
variables ``(p, q)`` for ``(A x, G x)``, ``x_bar_0 = x_0``, iteration ``k`` is

    p_k = (p_{k-1} + sigma (A x_bar_{k-1} - y)) / (1 + sigma),
    q_k = proj_{||.||_* <= lamda}(q_{k-1} + sigma G x_bar_{k-1}),
    x_k = x_{k-1} - tau (A^H p_k + G^H q_k),
    x_bar_k = 2 x_k - x_{k-1}

(Chambolle & Pock, J. Math. Imaging Vis. 2011), ``proj`` the projection onto the dual-norm ball:
per pixel onto ``sqrt(|q_h|^2 + |q_w|^2) <= lamda`` (isotropic) or per component onto
``|q| <= lamda`` (anisotropic). It converges for ``sigma tau L <= 1``, ``L = ||K||^2`` the largest
eigenvalue of ``A^H A + G^H G``; as in SigPy, ``sigma = 1`` and ``tau = 1 / (sigma L)`` by
default, ``L`` estimated per sample by a 30-step :func:`~deepinv_lab.optim.fista.power_iteration`.

A sample stops once its relative change ``||x_k - x_{k-1}|| / ||x_k||`` is at most ``tol`` (SigPy
tests the absolute ``||x_k - x_{k-1}|| / sqrt(tau)``); ``tol = 0`` runs all ``max_iter``
iterations and reports no missed tolerance. The solve reports the objective
``1/2 ||A x - y||^2 + lamda ||G x||`` of its result per sample, computed once after the last
iteration. Gradients (e.g. with respect to a learned ``lamda``) flow by autograd through every
iteration, so memory grows with ``max_iter``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from deepinv_lab.errors import UserError
from deepinv_lab.functional.gradient import (
    GRADIENT_DIM,
    finite_difference,
    finite_difference_adjoint,
    total_variation,
)
from deepinv_lab.optim.cg import check_cg_args
from deepinv_lab.optim.convergence import (
    OnFailure,
    SolveInfo,
    check_convergence,
    per_sample,
    relative_change,
)
from deepinv_lab.optim.fista import (
    check_positive_steps,
    least_squares_objective,
    power_iteration,
    summary_with_objective,
)
from deepinv_lab.systems.base import LinearSystem


@dataclass(frozen=True)
class PDHGInfo(SolveInfo):
    """What a PDHG solve did, per sample (detached tensors of shape ``(B,)``).

    Attributes:
        iterations: iterations in which the sample was still updated.
        relative_residual: the last relative change ``||x_k - x_{k-1}|| / ||x_k||``.
        converged: whether ``relative_residual <= tol``.
        tau, sigma: the primal and dual step sizes used.
        objective: ``1/2 ||A x - y||^2 + lamda ||G x||`` of the returned ``x``.
    """

    iterations: torch.Tensor
    relative_residual: torch.Tensor
    converged: torch.Tensor
    tau: torch.Tensor
    sigma: torch.Tensor
    objective: torch.Tensor | None = None

    def summary(self, prefix: str = "") -> dict[str, float]:
        """:meth:`SolveInfo.summary` and ``{prefix}objective`` (mean over the batch)."""
        return summary_with_objective(super().summary(prefix), self.objective, prefix)


def project_dual_ball(
    q: torch.Tensor, lamda: float | torch.Tensor, isotropic: bool = True
) -> torch.Tensor:
    """Project ``q`` ``(..., 2, H, W)`` onto ``{||q||_* <= lamda}``, the dual ball of the TV norm:
    per pixel onto ``sqrt(|q_h|^2 + |q_w|^2) <= lamda`` (isotropic), or per entry onto
    ``|q| <= lamda`` (anisotropic). Computed as ``q - shrink(q, lamda)`` (Moreau), which stays
    finite at ``lamda = 0``."""
    magnitude = q.abs()
    if isotropic:
        magnitude = magnitude.square().sum(dim=GRADIENT_DIM, keepdim=True).sqrt()
    # Where q = 0 nothing shrinks; the clamp only avoids 0 / 0.
    shrink = torch.relu(magnitude - lamda) / magnitude.clamp_min(torch.finfo(magnitude.dtype).tiny)
    return q - shrink * q


def check_weight(owner: str, lamda: float | torch.Tensor) -> None:
    """A UserError naming ``owner`` unless ``lamda`` is a finite number ``>= 0`` (a Python number
    or a one-element real tensor)."""
    if isinstance(lamda, torch.Tensor):
        valid = lamda.numel() == 1 and not lamda.is_complex()
        value = float(lamda.detach()) if valid else math.nan
    else:
        valid = not isinstance(lamda, bool) and isinstance(lamda, (int, float))
        value = lamda if valid else math.nan
    if not (valid and math.isfinite(value) and value >= 0):
        raise UserError(f"{owner}: lamda must be a finite number >= 0, got {lamda!r}")


def pdhg(
    system: LinearSystem,
    y: torch.Tensor,
    lamda: float | torch.Tensor,
    max_iter: int = 100,
    tol: float = 0.0,
    sigma: float | torch.Tensor | None = None,
    tau: float | torch.Tensor | None = None,
    isotropic: bool = True,
    x0: torch.Tensor | None = None,
    on_failure: OnFailure = "warn",
) -> tuple[torch.Tensor, PDHGInfo]:
    """Minimise ``1/2 ||A x - y||^2 + lamda TV(x)`` by PDHG, per sample; see the module docstring.

    Args:
        system: the forward model ``A`` (called, ``adjoint``, ``normal``), acting per sample of a
            batch; its images are ``(B, C, H, W)``.
        y: measurements ``(B, ...)``.
        lamda: the TV weight ``>= 0``: a number or a 0-d real tensor (which may require a
            gradient: it flows by autograd through the iterations).
        max_iter: iterations at most (``>= 0``).
        tol: stop a sample once its relative change is at most ``tol`` (0: run ``max_iter``).
        sigma, tau: dual and primal steps ``> 0``: numbers or one value per sample ``(B,)``. As in
            SigPy, a missing one is ``1 / (other * L)`` and, both missing, ``sigma = 1``.
        isotropic: the ``l_{1,2}`` TV norm (``True``) or the anisotropic ``l_1`` one (SigPy's).
        x0: initial guess shaped like ``A^H y`` (zeros when ``None``).
        on_failure: what a missed ``tol > 0`` does (``"warn"``, ``"raise"``, ``"ignore"``); a
            non-finite change raises in every mode.

    Returns:
        ``(x, info)``: ``x`` shaped like ``A^H y`` and a :class:`PDHGInfo`.
    """
    check_cg_args("pdhg", tol, max_iter)
    check_weight("pdhg", lamda)
    adjoint_y = system.adjoint(y)
    batch, real, device = adjoint_y.shape[0], adjoint_y.real.dtype, adjoint_y.device

    def as_steps(step: float | torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(step, dtype=real, device=device).expand(batch)

    given = {name: step for name, step in (("sigma", sigma), ("tau", tau)) if step is not None}
    check_positive_steps("pdhg", **{name: as_steps(step) for name, step in given.items()})
    if sigma is None or tau is None:
        # ||K||^2 for K = [A; G]: the top eigenvalue of A^H A + G^H G.
        squared_norm = power_iteration(
            lambda v: system.normal(v) + finite_difference_adjoint(finite_difference(v)),
            adjoint_y,
        )
        squared_norm = torch.where(squared_norm > 0, squared_norm, torch.ones_like(squared_norm))
        if sigma is None and tau is None:
            sigma = 1.0
        if tau is None:
            tau = 1 / (as_steps(sigma) * squared_norm)
        else:
            sigma = 1 / (as_steps(tau) * squared_norm)
    sigma, tau = as_steps(sigma), as_steps(tau)
    if isinstance(lamda, torch.Tensor):
        lamda = lamda.to(device=device, dtype=real)

    x = torch.zeros_like(adjoint_y) if x0 is None else x0
    x_bar = x
    dual_data = torch.zeros_like(y)
    dual_gradient = torch.zeros_like(finite_difference(x))
    sigma_data, sigma_gradient = per_sample(sigma, y), per_sample(sigma, dual_gradient)
    tau_x = per_sample(tau, x)

    active = torch.ones(batch, dtype=torch.bool, device=device)
    iterations = torch.zeros(batch, dtype=torch.long, device=device)
    change = torch.full((batch,), math.inf, dtype=real, device=device)
    for _ in range(max_iter):
        if not bool(active.any()):
            break
        new_data = (dual_data + sigma_data * (system(x_bar) - y)) / (1 + sigma_data)
        new_gradient = project_dual_ball(
            dual_gradient + sigma_gradient * finite_difference(x_bar), lamda, isotropic
        )
        new_x = x - tau_x * (system.adjoint(new_data) + finite_difference_adjoint(new_gradient))
        new_x_bar = 2 * new_x - x
        new_change = relative_change(new_x, x)
        change = torch.where(active, new_change, change)
        # Frozen samples keep every variable; torch.where (not in-place) keeps autograd intact.
        dual_data = torch.where(per_sample(active, y), new_data, dual_data)
        dual_gradient = torch.where(per_sample(active, dual_gradient), new_gradient, dual_gradient)
        keep = per_sample(active, x)
        x, x_bar = torch.where(keep, new_x, x), torch.where(keep, new_x_bar, x_bar)
        iterations = iterations + active.long()
        active = active & (change > tol)

    info = PDHGInfo(
        iterations=iterations,
        relative_residual=change,
        converged=change <= tol,
        tau=tau,
        sigma=sigma,
        objective=least_squares_objective(
            system, y, x, lambda image: lamda * total_variation(image, isotropic)
        ),
    )
    if max_iter > 0:
        check_convergence(
            "pdhg", iterations, change, info.converged, tol, on_failure if tol > 0 else "ignore"
        )
    return x, info
