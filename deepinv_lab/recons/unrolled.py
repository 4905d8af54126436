"""Unrolled model-based networks: MoDL and unrolled proximal gradient."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from deepinv_lab.optim.data_consistency import GradientDescentStep
from deepinv_lab.optim.unroll import ProximalGradientIteration, Unrolled, modl_iteration
from deepinv_lab.recons.base import SolutionRecon
from deepinv_lab.systems.base import LinearSystem


class _UnrolledRecon(SolutionRecon):
    """``x_K`` of ``self.unrolled`` started from ``x_0 = A^H y``, with ``A^H y`` and ``A^H A`` as
    the iteration's context."""

    unrolled: Unrolled
    magnitude: bool

    def solution(self, y: torch.Tensor, system: LinearSystem) -> torch.Tensor:
        """``x_K`` (complex for MRI, in the System's input space)."""
        adjoint_y = system.adjoint(y)
        return self.unrolled(adjoint_y, adjoint_y, system.normal)


class MoDL(_UnrolledRecon):
    """MoDL (Aggarwal, Mani & Jacob, IEEE TMI 2019): ``K`` unrolled iterations of
    ``x_{k+1} = (A^H A + lam I)^{-1} (A^H y + lam D(x_k))`` from ``x_0 = A^H y``.

    Args:
        denoiser: the prior ``D``, any network on real ``(B, C, H, W)`` tensors; complex images
            reach it as real/imaginary channels (e.g. ``ResNetDenoiser(in_chans=2)``, MoDL's).
        num_iterations: ``K`` (MoDL: 10).
        share_weights: one ``D`` and one ``lam`` for all iterations (MoDL), or one per iteration.
        damping, learn_damping: ``lam > 0`` (MoDL: 0.05, learned).
        cg_max_iter, cg_tol: each data-consistency solve (MoDL: 10 CG iterations).
        cg_backward: ``"autograd"`` or ``"implicit"`` differentiation of the CG solves.
        checkpoint_iterations: recompute activations per iteration in the backward pass.
        magnitude: return ``|x|``.

    Shapes: ``y`` as the System produces it -> ``(B, 1, H, W)`` for MRI.
    """

    def __init__(
        self,
        denoiser: nn.Module,
        num_iterations: int = 10,
        share_weights: bool = True,
        damping: float = 0.05,
        learn_damping: bool = True,
        cg_max_iter: int = 10,
        cg_tol: float = 1e-6,
        cg_backward: Literal["autograd", "implicit"] = "autograd",
        checkpoint_iterations: bool = False,
        magnitude: bool = True,
    ):
        super().__init__()
        self.unrolled = Unrolled(
            modl_iteration(
                "MoDL", denoiser, damping, learn_damping, cg_tol, cg_max_iter, cg_backward
            ),
            num_iterations,
            share_weights,
            checkpoint_iterations,
        )
        self.magnitude = magnitude

    def diagnostics(self) -> dict[str, float]:
        # the last iteration's solve; MoDL runs a fixed CG budget, so no warnings are raised
        return self.unrolled.steps()[-1].data_consistency.diagnostics()


class UnrolledProximalGradient(_UnrolledRecon):
    """``K`` unrolled iterations of ``x_{k+1} = D_k(x_k - eta_k A^H (A x_k - y))`` from
    ``x_0 = A^H y``: proximal gradient descent with a learned proximal operator.

    Args:
        denoiser: the prior ``D`` (real channels; complex images as real/imaginary channels).
        num_iterations: ``K``.
        share_weights: one ``D`` and ``eta`` for all iterations, or one per iteration.
        step_size, learn_step_size: ``eta > 0`` (1 suits Systems with ``||A|| <= 1``).
        checkpoint_iterations: recompute activations per iteration in the backward pass.
        magnitude: return ``|x|``.
    """

    def __init__(
        self,
        denoiser: nn.Module,
        num_iterations: int = 8,
        share_weights: bool = False,
        step_size: float = 1.0,
        learn_step_size: bool = True,
        checkpoint_iterations: bool = False,
        magnitude: bool = True,
    ):
        super().__init__()
        iteration = ProximalGradientIteration(
            denoiser, GradientDescentStep(step_size, learn_step_size)
        )
        self.unrolled = Unrolled(iteration, num_iterations, share_weights, checkpoint_iterations)
        self.magnitude = magnitude

    def diagnostics(self) -> dict[str, float]:
        # each iteration's gradient_step/step_size, averaged over the iterations
        steps = [step.gradient_step.diagnostics() for step in self.unrolled.iterations]
        return {key: sum(step[key] for step in steps) / len(steps) for key in steps[0]}
