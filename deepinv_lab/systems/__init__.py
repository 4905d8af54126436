"""System blocks: forward models with an operator algebra (see :mod:`deepinv_lab.systems.base`).

Heavy dependencies load when used: FINUFFT or torchkbnufft when a NUFFT first runs, SigPy when a
Poisson-disc mask is drawn.
"""

from deepinv_lab.systems.base import (
    Adjoint,
    Composition,
    Identity,
    LinearSystem,
    Normal,
    Scaled,
    Stack,
    Sum,
    System,
)
from deepinv_lab.systems.coils import birdcage_maps, birdcage_maps_3d
from deepinv_lab.systems.cs import CompressedSensing
from deepinv_lab.systems.downsampling import Downsampling
from deepinv_lab.systems.espirit import espirit_maps
from deepinv_lab.systems.masking import Inpainting, box_mask, random_pixel_mask
from deepinv_lab.systems.mri import (
    FFT2,
    FFT3,
    CoilSensitivity,
    KSpaceMask,
    MultiCoilFourier,
    MultiCoilMRI,
    SingleCoilMRI,
)
from deepinv_lab.systems.mri3d import (
    MultiCoilMRI3D,
    decouple_readout,
    reassemble_readout,
    reconstruct_slices,
)
from deepinv_lab.systems.noise import (
    ComplexGaussianNoise,
    GaussianNoise,
    PoissonNoise,
    RandomSigmaGaussianNoise,
)
from deepinv_lab.systems.nufft import NUFFT, MultiCoilNUFFT
from deepinv_lab.systems.wavelet import Wavelet2D

__all__ = [
    "Wavelet2D",
    "FFT2",
    "FFT3",
    "NUFFT",
    "Adjoint",
    "CoilSensitivity",
    "ComplexGaussianNoise",
    "Composition",
    "CompressedSensing",
    "Downsampling",
    "GaussianNoise",
    "Identity",
    "Inpainting",
    "KSpaceMask",
    "LinearSystem",
    "MultiCoilFourier",
    "MultiCoilMRI",
    "MultiCoilMRI3D",
    "MultiCoilNUFFT",
    "Normal",
    "PoissonNoise",
    "RandomSigmaGaussianNoise",
    "Scaled",
    "SingleCoilMRI",
    "Stack",
    "Sum",
    "System",
    "birdcage_maps",
    "birdcage_maps_3d",
    "box_mask",
    "decouple_readout",
    "espirit_maps",
    "random_pixel_mask",
    "reassemble_readout",
    "reconstruct_slices",
]
