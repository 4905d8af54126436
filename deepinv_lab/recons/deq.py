"""Deep equilibrium Recon (Gilton, Ongie & Willett, IEEE TCI 2021)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from deepinv_lab.errors import UserError
from deepinv_lab.models.spectral import spectral_normalize
from deepinv_lab.optim.convergence import OnFailure
from deepinv_lab.optim.data_consistency import GradientDescentStep
from deepinv_lab.optim.deq import DeepEquilibrium
from deepinv_lab.optim.unroll import ModlIteration, ProximalGradientIteration, modl_iteration
from deepinv_lab.recons.base import SolutionRecon
from deepinv_lab.systems.base import LinearSystem


class DEQ(SolutionRecon):
    """``x* = T(x*)``: a model-based iteration run to its fixed point, differentiated implicitly.

    The iteration ``T`` is one of

    * ``"proximal_gradient"``: ``T(x) = D(x - eta (A^H A x - A^H y))`` (DEQ-ProxGrad);
    * ``"modl"``: ``T(x) = (A^H A + lam I)^{-1} (A^H y + lam D(x))`` (MoDL's iteration);

    started from ``x_0 = A^H y`` and solved by Anderson acceleration or Picard iteration
    (:class:`~deepinv_lab.optim.deq.DeepEquilibrium`). Training memory is that of one application
    of ``T``, whatever the number of iterations.

    Args:
        denoiser: the prior ``D`` (real channels; complex images as real/imaginary channels).
        iteration: ``"proximal_gradient"`` or ``"modl"``.
        step_size, learn_step_size: ``eta`` of the proximal-gradient iteration.
        damping, learn_damping, cg_max_iter, cg_tol: ``lam`` and the CG solve of the MoDL
            iteration (differentiated through its iterations inside each application of ``T``).
        solver, tol, max_iter: forward fixed-point solve (``"anderson"`` or ``"picard"``).
        backward: ``"implicit"`` (implicit function theorem) or ``"jfb"`` (Jacobian-free).
        backward_max_iter, backward_tol: the adjoint fixed point (``None``: as forward).
        relaxation: ``beta`` in ``x <- (1 - beta) x + beta T(x)`` (damping; same fixed point).
        anderson_memory: iterates combined by Anderson acceleration.
        spectral_norm: constrain every convolution of ``D`` to spectral norm <= 1
            (:func:`~deepinv_lab.models.spectral.spectral_normalize`), a safeguard that keeps
            ``T`` closer to a contraction.
        on_failure: what a solve that misses its tolerance does (``"warn"``, ``"raise"``,
            ``"ignore"``); a non-finite residual always raises.
        magnitude: return ``|x*|``.

    :meth:`diagnostics` reports the forward and backward iteration counts and relative residuals
    (``deq/iterations``, ``deq/relative_residual``, ``deq/backward_iterations``,
    ``deq/backward_relative_residual``) and the weight of ``T`` (``gradient_step/step_size``, or
    ``cg/damping`` and the CG numbers), which the training module logs under ``train/`` and
    ``val/``.
    """

    def __init__(
        self,
        denoiser: nn.Module,
        iteration: Literal["proximal_gradient", "modl"] = "proximal_gradient",
        step_size: float = 1.0,
        learn_step_size: bool = True,
        damping: float = 0.05,
        learn_damping: bool = True,
        cg_max_iter: int = 10,
        cg_tol: float = 1e-6,
        solver: Literal["anderson", "picard"] = "anderson",
        tol: float = 1e-3,
        max_iter: int = 50,
        backward: Literal["implicit", "jfb"] = "implicit",
        backward_max_iter: int | None = None,
        backward_tol: float | None = None,
        relaxation: float = 1.0,
        anderson_memory: int = 5,
        spectral_norm: bool = False,
        on_failure: OnFailure = "warn",
        magnitude: bool = True,
    ):
        super().__init__()
        if spectral_norm:
            denoiser = spectral_normalize(denoiser)
        if iteration == "proximal_gradient":
            self.iteration = ProximalGradientIteration(
                denoiser, GradientDescentStep(step_size, learn_step_size)
            )
        elif iteration == "modl":
            self.iteration = modl_iteration(
                "DEQ", denoiser, damping, learn_damping, cg_tol, cg_max_iter
            )
        else:
            raise UserError(
                f"DEQ: iteration must be 'proximal_gradient' or 'modl', got {iteration!r}"
            )
        self.deq = DeepEquilibrium(
            solver=solver,
            tol=tol,
            max_iter=max_iter,
            backward=backward,
            backward_tol=backward_tol,
            backward_max_iter=backward_max_iter,
            relaxation=relaxation,
            anderson_memory=anderson_memory,
            on_failure=on_failure,
        )
        self.magnitude = magnitude

    def solution(self, y: torch.Tensor, system: LinearSystem) -> torch.Tensor:
        """The fixed point ``x*`` (complex for MRI, in the System's input space)."""
        adjoint_y = system.adjoint(y)

        def step(x: torch.Tensor) -> torch.Tensor:
            return self.iteration(x, adjoint_y, system.normal)

        return self.deq(step, adjoint_y)

    def diagnostics(self) -> dict[str, float]:
        out = self.deq.diagnostics()
        if isinstance(self.iteration, ModlIteration):
            out.update(self.iteration.data_consistency.diagnostics())
        else:
            out.update(self.iteration.gradient_step.diagnostics())
        return out
