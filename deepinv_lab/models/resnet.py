"""The residual CNN denoiser of MoDL.

Reference:
    H. K. Aggarwal, M. P. Mani, M. Jacob, "MoDL: Model-based deep learning architecture for
    inverse problems", IEEE Transactions on Medical Imaging 38(2), 2019.
"""

from __future__ import annotations

import torch
from torch import nn

from deepinv_lab.models.base import Model


class ResNetDenoiser(Model):
    """MoDL's denoiser ``D_w(x) = x + N_w(x)`` (Aggarwal et al., 2019).

    ``N_w`` is ``num_layers`` 3x3 convolutions: ``num_layers - 1`` times
    ``conv -> BatchNorm -> ReLU``, then a last ``conv`` with neither batch norm nor ReLU, so the
    correction it adds can take either sign. The shortcut adds the input (MoDL's code computes
    ``shortcut + last layer``; the paper writes the same network as ``x - noise estimate``, which
    differs only in the sign absorbed by the last layer's weights). The hidden convolutions have
    no bias (batch norm's shift replaces it); the last one has a bias.

    Args:
        in_chans: image channels, input and output; 2 for a complex image as real/imag channels.
        num_layers: convolutions in ``N_w`` (MoDL: 5), at least 2.
        chans: feature channels of the hidden layers (MoDL: 64).

    Shapes: ``(B, in_chans, H, W)`` -> ``(B, in_chans, H, W)``, any ``H, W``.
    """

    def __init__(self, in_chans: int = 2, num_layers: int = 5, chans: int = 64):
        super().__init__()
        self.check_num_layers(num_layers)
        self.in_chans = in_chans
        self.num_layers = num_layers
        self.chans = chans
        layers: list[nn.Module] = []
        stage_in = in_chans
        for _ in range(num_layers - 1):
            layers += [
                nn.Conv2d(stage_in, chans, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(chans),
                nn.ReLU(inplace=True),
            ]
            stage_in = chans
        layers.append(nn.Conv2d(chans, in_chans, kernel_size=3, padding=1))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_chans, H, W)`` -> ``(B, in_chans, H, W)``: ``x + N_w(x)``."""
        self.check_input(x, self.in_chans)
        return x + self.layers(x)

    @classmethod
    def example(cls) -> tuple[ResNetDenoiser, torch.Tensor]:
        """A 3-layer, 8-channel denoiser on a ``(2, 2, 17, 13)`` input (odd size on purpose)."""
        return cls(in_chans=2, num_layers=3, chans=8), torch.randn(2, 2, 17, 13)
