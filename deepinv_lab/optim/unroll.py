"""Unrolled iterations: ``x_{k+1} = T_k(x_k)`` for a fixed number of steps, and the iteration maps
``T`` of model-based networks, each a prior step combined with a data-consistency step.

* :class:`ModlIteration` -- ``T(x) = (A^H A + lam I)^{-1} (A^H y + lam D(x))`` (MoDL);
* :class:`ProximalGradientIteration` -- ``T(x) = D(x - eta A^H (A x - y))`` (unrolled proximal
  gradient; Gilton et al.'s DEQ-ProxGrad).

``D`` is any network on real ``(B, C, H, W)`` tensors; complex images reach it with real and
imaginary parts as channels (:func:`apply_prior`). The same maps run a fixed number of times in
:class:`Unrolled` and to a fixed point in :class:`~deepinv_lab.optim.deq.DeepEquilibrium`.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from deepinv_lab.errors import UserError
from deepinv_lab.functional import channels_to_complex, complex_to_channels
from deepinv_lab.optim.cg import CG_OPTION_NAMES, check_cg_args
from deepinv_lab.optim.data_consistency import (
    GradientDescentStep,
    NormalOperator,
    ProximalDataConsistency,
)


def apply_prior(prior: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``prior(x)`` for a real ``x``; for a complex ``(B, C, H, W)`` ``x``, the prior sees
    ``(B, 2C, H, W)`` real/imaginary channels and its output is turned back into complex."""
    if x.is_complex():
        return channels_to_complex(prior(complex_to_channels(x)))
    return prior(x)


class ModlIteration(nn.Module):
    """``T(x) = (A^H A + lam I)^{-1} (A^H y + lam D(x))``, MoDL's iteration (Aggarwal et al.,
    IEEE TMI 2019). ``D`` is the prior; the CG solve starts from ``D(x)``."""

    def __init__(self, prior: nn.Module, data_consistency: ProximalDataConsistency):
        super().__init__()
        self.prior = prior
        self.data_consistency = data_consistency

    def forward(
        self, x: torch.Tensor, adjoint_y: torch.Tensor, normal: NormalOperator
    ) -> torch.Tensor:
        return self.data_consistency(apply_prior(self.prior, x), adjoint_y, normal)


def modl_iteration(
    owner: str,
    prior: nn.Module,
    damping: float,
    learn_damping: bool,
    cg_tol: float,
    cg_max_iter: int,
    cg_backward: str = "autograd",
) -> ModlIteration:
    """A :class:`ModlIteration` from a Recon's options, checked under their config names
    (``cg_tol``, ``cg_max_iter``, ``cg_backward``; errors name ``owner``). Its CG solves are a
    fixed budget inside a network, so a missed tolerance never warns."""
    check_cg_args(owner, cg_tol, cg_max_iter, cg_backward, names=CG_OPTION_NAMES)
    data_consistency = ProximalDataConsistency(
        damping, learn_damping, cg_tol, cg_max_iter, cg_backward, on_failure="ignore"
    )
    return ModlIteration(prior, data_consistency)


class ProximalGradientIteration(nn.Module):
    """``T(x) = D(x - eta (A^H A x - A^H y))``: a gradient step on the data term, then the prior
    as a learned proximal operator."""

    def __init__(self, prior: nn.Module, gradient_step: GradientDescentStep):
        super().__init__()
        self.prior = prior
        self.gradient_step = gradient_step

    def forward(
        self, x: torch.Tensor, adjoint_y: torch.Tensor, normal: NormalOperator
    ) -> torch.Tensor:
        return apply_prior(self.prior, self.gradient_step(x, adjoint_y, normal))


class Unrolled(nn.Module):
    """``x_K = T_K(... T_1(x_0))``: an iteration map run ``num_iterations`` times.

    Args:
        iteration: the map ``T(x, *context)``, e.g. a :class:`ModlIteration`.
        num_iterations: ``K >= 1``.
        share_weights: one ``T`` for all iterations (MoDL's choice), or ``K`` independent copies
            of it, initialised identically.
        checkpoint_iterations: recompute each iteration's activations in the backward pass
            (``torch.utils.checkpoint``): memory of one iteration instead of ``K``, same gradients.
    """

    def __init__(
        self,
        iteration: nn.Module,
        num_iterations: int,
        share_weights: bool = True,
        checkpoint_iterations: bool = False,
    ):
        super().__init__()
        if isinstance(num_iterations, bool) or not isinstance(num_iterations, int):
            raise UserError(f"Unrolled: num_iterations must be an integer, got {num_iterations!r}")
        if num_iterations < 1:
            raise UserError(f"Unrolled: num_iterations must be >= 1, got {num_iterations}")
        self.num_iterations = num_iterations
        self.share_weights = share_weights
        self.checkpoint_iterations = checkpoint_iterations
        copies = 1 if share_weights else num_iterations
        self.iterations = nn.ModuleList(
            [iteration] + [copy.deepcopy(iteration) for _ in range(copies - 1)]
        )

    def steps(self) -> list[nn.Module]:
        """The map applied at each of the ``K`` iterations, in order."""
        if self.share_weights:
            return [self.iterations[0]] * self.num_iterations
        return list(self.iterations)

    def forward(self, x: torch.Tensor, *context) -> torch.Tensor:
        use_checkpoint = self.checkpoint_iterations and torch.is_grad_enabled()
        for step in self.steps():
            if use_checkpoint:
                x = checkpoint(step, x, *context, use_reentrant=False)
            else:
                x = step(x, *context)
        return x

    def extra_repr(self) -> str:
        return f"num_iterations={self.num_iterations}, share_weights={self.share_weights}"
