"""SRGAN's perceptual (VGG feature) loss.

``l_VGG = mean((s phi(G(y)) - s phi(x))^2)`` with ``phi`` the VGG19 features of
:class:`~deepinv_lab.models.vgg.VGG19Features` (``conv5_4`` after its ReLU by default, SRGAN's
VGG54) and ``s`` = 1/12.75, the rescaling of SRGAN (Ledig et al., CVPR 2017), which brings the
loss to the order of the pixel MSE. Images are expected in ``[0, 1]``; single-channel images are
repeated to three channels, and all are normalised with ImageNet's mean and standard deviation,
as the torchvision weights expect.

The VGG is frozen and kept out of the module's parameters and state dict: checkpoints do not carry
its 80 MB, and it never reaches an optimizer. It must be given pretrained weights: a VGG with
random weights is no perceptual loss, so none is made silently.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from deepinv_lab.errors import UserError
from deepinv_lab.models.vgg import IMAGENET_MEAN, IMAGENET_STD, TORCHVISION_URL, VGG19Features

MISSING_WEIGHTS = (
    "VGGPerceptualLoss needs the ImageNet weights of VGG19 in torchvision's layout, and nothing "
    "is downloaded at run time. On a machine with internet, download {url} (torchvision's "
    "vgg19-dcbb9e9d.pth; or save torchvision.models.vgg19(weights='IMAGENET1K_V1')"
    ".state_dict() with torch.save), copy it here and give its path as weights, e.g. "
    "--model.init_args.perceptual_loss.init_args.weights /path/vgg19-dcbb9e9d.pth"
)


class VGGPerceptualLoss(nn.Module):
    """``mean((scale * phi(pred) - scale * phi(target))^2)`` on VGG19 features.

    Args:
        weights: path of a torchvision-layout VGG19 state dict (required; see module docstring).
        layer: the VGG19 layer whose (post-ReLU) features are compared, default ``"conv5_4"``.
        feature_scale: ``s``, SRGAN's 1/12.75.
        data_range: the images' maximum (``1.0``): they are divided by it before the ImageNet
            normalisation.

    Shapes: ``pred``, ``target`` ``(B, 1 or 3, H, W)`` -> scalar. Gradients flow to ``pred`` only.
    """

    def __init__(
        self,
        weights: str | None = None,
        layer: str = "conv5_4",
        feature_scale: float = 1 / 12.75,
        data_range: float = 1.0,
    ):
        super().__init__()
        if weights is None:
            raise UserError(MISSING_WEIGHTS.format(url=TORCHVISION_URL))
        if feature_scale <= 0 or data_range <= 0:
            raise UserError(
                f"VGGPerceptualLoss: feature_scale ({feature_scale}) and data_range "
                f"({data_range}) must be > 0"
            )
        network = VGG19Features(layer, weights).eval()
        self._vgg = [network]  # a list: not a submodule, so not in state_dict() or parameters()
        self.layer = layer
        self.feature_scale = feature_scale
        self.data_range = data_range
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def vgg(self) -> VGG19Features:
        return self._vgg[0]

    def _features(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(
                f"VGGPerceptualLoss expects images (B, 1 or 3, H, W), got {tuple(x.shape)}"
            )
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = (x / self.data_range - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        network = self.vgg
        if next(network.parameters()).device != x.device:
            network.to(x.device)
        return network(x) * self.feature_scale

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        if pred.shape != target.shape:
            raise ValueError(
                f"VGGPerceptualLoss: pred {tuple(pred.shape)} and target {tuple(target.shape)} "
                "must have the same shape"
            )
        with torch.no_grad():
            target_features = self._features(target)
        return F.mse_loss(self._features(pred), target_features)
