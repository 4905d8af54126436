"""System blocks: forward models with an operator algebra (see :mod:`deepinv_lab.systems.base`)."""

from deepinv_lab.systems.base import (
    Adjoint,
    Composition,
    Identity,
    LinearSystem,
    Normal,
    Scaled,
    Sum,
    System,
)
from deepinv_lab.systems.coils import birdcage_maps
from deepinv_lab.systems.mri import FFT2, CoilSensitivity, KSpaceMask, MultiCoilMRI
from deepinv_lab.systems.noise import ComplexGaussianNoise

__all__ = [
    "FFT2",
    "Adjoint",
    "CoilSensitivity",
    "ComplexGaussianNoise",
    "Composition",
    "Identity",
    "KSpaceMask",
    "LinearSystem",
    "MultiCoilMRI",
    "Normal",
    "Scaled",
    "Sum",
    "System",
    "birdcage_maps",
]
