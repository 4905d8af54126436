"""Optimization blocks: algorithms combining a forward model, given as callables, with a prior."""

from deepinv_lab.optim.cg import CGInfo, conjugate_gradient
from deepinv_lab.optim.least_squares import least_squares
from deepinv_lab.optim.varnet import VarNetCascade

__all__ = ["CGInfo", "VarNetCascade", "conjugate_gradient", "least_squares"]
