"""Model blocks: learned networks on real tensors ``(B, C, H, W)``."""

from deepinv_lab.models.base import Model
from deepinv_lab.models.dncnn import BiasFreeBatchNorm2d, BiasFreeDnCNN, DnCNN
from deepinv_lab.models.rcan import RCAN
from deepinv_lab.models.resnet import ResNetDenoiser
from deepinv_lab.models.sensitivity import SensitivityModel
from deepinv_lab.models.spectral import spectral_normalize
from deepinv_lab.models.srgan import SRGANDiscriminator, SRGANGenerator
from deepinv_lab.models.unet import BiasFreeUnet, NormUnet, Unet
from deepinv_lab.models.vgg import VGG19Features
from deepinv_lab.models.wrappers import ComplexWrapper, NormalizedComplexWrapper, SelfEnsemble

__all__ = [
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
    "spectral_normalize",
]
