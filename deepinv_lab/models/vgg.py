"""VGG19's convolutional feature extractor, defined here (torchvision is not a dependency).

The layers and their indices are those of torchvision's ``vgg19().features`` (Simonyan &
Zisserman, "Very deep convolutional networks for large-scale image recognition", ICLR 2015,
configuration E), so a torchvision state dict -- e.g. the ImageNet weights
``vgg19-dcbb9e9d.pth`` -- loads into it key for key (``features.<index>.weight`` / ``.bias``;
the classifier's keys are ignored).

Layer names ``conv<block>_<n>`` are the ``n``-th convolution of block ``block`` (1..5); the
features of a layer are taken after its ReLU, as SRGAN's ``phi_{i,j}`` (Ledig et al., CVPR 2017):
``conv5_4`` is "the 4th convolution (after activation) before the 5th max-pooling", the
VGG54 loss of SRGAN.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from deepinv_lab.errors import UserError
from deepinv_lab.models.base import Model

#: Output channels of VGG19's convolutions, "M" for the 2x2 max-pools (torchvision's config "E").
VGG19_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M")
VGG19_CONFIG += (512, 512, 512, 512, "M", 512, 512, 512, 512, "M")

#: ImageNet statistics the torchvision weights expect (RGB, images in [0, 1]).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

TORCHVISION_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"


def _layer_indices() -> dict[str, int]:
    """``{"conv1_1": 0, "conv1_2": 2, ..., "conv5_4": 34}``: each convolution's index in
    torchvision's ``features``."""
    names, index, block, number = {}, 0, 1, 0
    for entry in VGG19_CONFIG:
        if entry == "M":
            block, number, index = block + 1, 0, index + 1
            continue
        number += 1
        names[f"conv{block}_{number}"] = index
        index += 2  # the convolution and its ReLU
    return names


VGG19_LAYERS = _layer_indices()


class VGG19Features(Model):
    """VGG19's ``features`` up to and including the ReLU of ``layer``.

    Args:
        layer: the last convolution kept, ``"conv5_4"`` (SRGAN's VGG54, the default) down to
            ``"conv1_1"``; ``"conv2_2"`` is SRGAN's VGG22.
        weights: a file holding a torchvision-layout state dict (``torch.save`` of
            ``torchvision.models.vgg19(...).state_dict()``, such as ``vgg19-dcbb9e9d.pth``), or
            None for random weights (tests only: random features make no perceptual loss).

    Shapes: ``(B, 3, H, W)`` normalised RGB -> ``(B, C_layer, H / 2^p, W / 2^p)``, ``p`` the
    max-pools before ``layer``. The parameters are frozen (``requires_grad=False``).
    """

    def __init__(self, layer: str = "conv5_4", weights: str | None = None):
        super().__init__()
        if layer not in VGG19_LAYERS:
            raise UserError(
                f"VGG19Features: layer must be one of {', '.join(VGG19_LAYERS)}, got {layer!r}"
            )
        self.layer = layer
        last = VGG19_LAYERS[layer] + 1  # the ReLU after the convolution
        layers: list[nn.Module] = []
        channels = 3
        for entry in VGG19_CONFIG:
            if len(layers) > last:
                break
            if entry == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, entry, 3, padding=1), nn.ReLU(inplace=True)]
                channels = entry
        self.features = nn.Sequential(*layers[: last + 1])
        self.out_channels = channels
        if weights is not None:
            self.load_torchvision(weights)
        self.requires_grad_(False)

    def load_torchvision(self, weights: str | Path | Mapping[str, torch.Tensor]) -> None:
        """Load the ``features.*`` entries of a torchvision VGG19 state dict (a file or a
        mapping) that this truncated network has; other keys (deeper layers, the classifier)
        are ignored. A missing file or key, or a shape that does not fit, raises a
        :class:`~deepinv_lab.errors.UserError` naming the file and the keys."""
        source = str(weights) if not isinstance(weights, Mapping) else "the given state dict"
        if isinstance(weights, Mapping):
            state = weights
        else:
            path = Path(weights).expanduser()
            if not path.is_file():
                raise UserError(
                    f"VGG19 weights file not found: {path} (weights is the path of torchvision's "
                    "VGG19 state dict, e.g. vgg19-dcbb9e9d.pth)"
                )
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as error:  # noqa: BLE001 - name the file whatever went wrong
                raise UserError(f"cannot read VGG19 weights from {path}: {error}") from error
            if isinstance(state, Mapping) and "state_dict" in state:
                state = state["state_dict"]
        if not isinstance(state, Mapping):
            raise UserError(f"{source}: expected a state dict, got {type(state).__name__}")
        expected = self.state_dict()
        missing = [key for key in expected if key not in state]
        wrong = [
            f"{key} {tuple(state[key].shape)} (VGG19 has {tuple(value.shape)})"
            for key, value in expected.items()
            if key in state and tuple(state[key].shape) != tuple(value.shape)
        ]
        if missing or wrong:
            problems = []
            if missing:
                problems.append(f"missing {', '.join(missing[:6])}" + (" ..." * (len(missing) > 6)))
            if wrong:
                problems.append(f"wrong shapes {'; '.join(wrong[:4])}")
            raise UserError(
                f"{source} is not a torchvision VGG19 state dict: {'; '.join(problems)} "
                f"(expected keys features.<index>.weight/bias as in torchvision.models.vgg19)"
            )
        self.load_state_dict({key: state[key] for key in expected})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x, 3)
        return self.features(x)

    @classmethod
    def example(cls) -> tuple[VGG19Features, torch.Tensor]:
        model = cls(layer="conv2_2")
        model.requires_grad_(True)  # tests/test_models.py checks gradients reach every parameter
        return model, torch.rand(2, 3, 16, 12)
