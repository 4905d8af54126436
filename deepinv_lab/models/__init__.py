"""Model blocks: learned networks, registered by class name in :data:`MODELS`."""

from deepinv_lab.models.base import MODELS, Model
from deepinv_lab.models.sensitivity import SensitivityModel
from deepinv_lab.models.unet import NormUnet, Unet

__all__ = ["MODELS", "Model", "NormUnet", "SensitivityModel", "Unet"]
