"""Recons: named reconstructions ``forward(y, system) -> x_hat`` built from blocks."""

from deepinv_lab.recons.base import Recon
from deepinv_lab.recons.varnet import VarNet
from deepinv_lab.recons.zero_filled import ZeroFilled

__all__ = ["Recon", "VarNet", "ZeroFilled"]
