"""Optimization blocks: algorithms combining a forward model, given as callables, with a prior."""

from deepinv_lab.optim.cg import CGInfo, conjugate_gradient
from deepinv_lab.optim.convergence import ConvergenceError, ConvergenceWarning
from deepinv_lab.optim.data_consistency import GradientDescentStep, ProximalDataConsistency
from deepinv_lab.optim.deq import DeepEquilibrium
from deepinv_lab.optim.fista import FISTAInfo, fista, power_iteration
from deepinv_lab.optim.fixed_point import FixedPointInfo, anderson, picard, solve_fixed_point
from deepinv_lab.optim.least_squares import least_squares
from deepinv_lab.optim.pdhg import PDHGInfo, pdhg
from deepinv_lab.optim.unroll import (
    ModlIteration,
    ProximalGradientIteration,
    Unrolled,
    apply_prior,
)
from deepinv_lab.optim.varnet import VarNetCascade

__all__ = [
    "CGInfo",
    "ConvergenceError",
    "ConvergenceWarning",
    "DeepEquilibrium",
    "FISTAInfo",
    "FixedPointInfo",
    "GradientDescentStep",
    "ModlIteration",
    "PDHGInfo",
    "ProximalDataConsistency",
    "ProximalGradientIteration",
    "Unrolled",
    "VarNetCascade",
    "anderson",
    "apply_prior",
    "conjugate_gradient",
    "fista",
    "least_squares",
    "pdhg",
    "picard",
    "power_iteration",
    "solve_fixed_point",
]
