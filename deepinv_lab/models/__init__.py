"""Model blocks: learned networks on real tensors ``(B, C, H, W)``; most also take volumes
``(B, C, D, H, W)`` with ``spatial_dims=3`` (see :mod:`deepinv_lab.models.layers`)."""

from deepinv_lab.models.base import Model
from deepinv_lab.models.dncnn import BiasFreeBatchNorm, BiasFreeBatchNorm2d, BiasFreeDnCNN, DnCNN
from deepinv_lab.models.layers import pixel_shuffle_nd, pixel_unshuffle_nd
from deepinv_lab.models.rcan import RCAN
from deepinv_lab.models.resnet import ResNetDenoiser
from deepinv_lab.models.sensitivity import SensitivityModel
from deepinv_lab.models.spectral import spectral_normalize
from deepinv_lab.models.srgan import SRGANDiscriminator, SRGANGenerator
from deepinv_lab.models.unet import BiasFreeUnet, NormUnet, Unet
from deepinv_lab.models.vgg import VGG19Features
from deepinv_lab.models.wrappers import ComplexWrapper, NormalizedComplexWrapper, SelfEnsemble

__all__ = [
    "BiasFreeBatchNorm",
    "BiasFreeBatchNorm2d",
    "BiasFreeDnCNN",
    "BiasFreeUnet",
    "ComplexWrapper",
    "DnCNN",
    "Model",
    "NormUnet",
    "NormalizedComplexWrapper",
    "RCAN",
    "ResNetDenoiser",
    "SRGANDiscriminator",
    "SRGANGenerator",
    "SelfEnsemble",
    "SensitivityModel",
    "Unet",
    "VGG19Features",
    "pixel_shuffle_nd",
    "pixel_unshuffle_nd",
    "spectral_normalize",
]
