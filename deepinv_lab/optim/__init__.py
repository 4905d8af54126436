"""Optimization blocks: algorithms combining a forward model, given as callables, with a prior."""

from deepinv_lab.optim.varnet import VarNetCascade

__all__ = ["VarNetCascade"]
