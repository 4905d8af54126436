"""Recons: named reconstructions ``forward(y, system) -> x_hat`` built from blocks."""

from deepinv_lab.recons.base import Recon
from deepinv_lab.recons.cg_sense import CGSense
from deepinv_lab.recons.deq import DEQ
from deepinv_lab.recons.grappa import GrappaRecon
from deepinv_lab.recons.image import (
    Denoiser,
    Interpolation,
    NoisyInput,
    PostProcessing,
    SuperResolution,
)
from deepinv_lab.recons.normalized import Normalized
from deepinv_lab.recons.plug_and_play import RED, PlugAndPlay
from deepinv_lab.recons.primal_dual import LearnedPrimalDual
from deepinv_lab.recons.readout import ReadoutDecoupled
from deepinv_lab.recons.refinement import Refinement
from deepinv_lab.recons.sparsity import L1WaveletRecon, TVRecon
from deepinv_lab.recons.trained import TrainedDenoiser
from deepinv_lab.recons.unrolled import MoDL, UnrolledProximalGradient
from deepinv_lab.recons.varnet import VarNet
from deepinv_lab.recons.zero_filled import ZeroFilled

__all__ = [
    "DEQ",
    "CGSense",
    "Denoiser",
    "GrappaRecon",
    "Interpolation",
    "L1WaveletRecon",
    "LearnedPrimalDual",
    "MoDL",
    "NoisyInput",
    "Normalized",
    "PlugAndPlay",
    "PostProcessing",
    "RED",
    "ReadoutDecoupled",
    "Recon",
    "Refinement",
    "SuperResolution",
    "TVRecon",
    "TrainedDenoiser",
    "UnrolledProximalGradient",
    "VarNet",
    "ZeroFilled",
]
