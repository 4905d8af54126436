"""SRGAN generator and discriminator for x2^k single-image super-resolution.

References:
    C. Ledig et al., "Photo-realistic single image super-resolution using a generative adversarial
    network", CVPR 2017 (SRGAN).
    Y. D. Wang, R. T. Armstrong, P. Mostaghimi, "Boosting resolution and recovering texture of 2D
    and 3D micro-CT images with deep learning", Water Resources Research 2019 (EDSRGAN, the
    micro-CT variant).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from deepinv_lab.errors import UserError
from deepinv_lab.models.base import Model

_LEAKY_SLOPE = 0.2


class _ResidualBlock(nn.Module):
    """``x + conv3x3(act(conv3x3(x)))``, with batch norm after each conv when ``batch_norm``."""

    def __init__(self, chans: int, batch_norm: bool):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(chans, chans, 3, padding=1)]
        if batch_norm:
            layers.append(nn.BatchNorm2d(chans))
        layers += [nn.PReLU(), nn.Conv2d(chans, chans, 3, padding=1)]
        if batch_norm:
            layers.append(nn.BatchNorm2d(chans))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x)


class SRGANGenerator(Model):
    """The SRGAN generator: a residual network followed by sub-pixel (pixel-shuffle) up-sampling.

    ``head -> num_blocks residual blocks -> conv3x3 [-> BN] (+ long skip from the head) ->
    num_upsample x [conv3x3 (C -> 4C) -> PixelShuffle(2) -> PReLU] -> tail conv -> out_chans``.
    The output is ``2**num_upsample`` times larger than the input in H and W.

    Two layouts (``variant``):

    * ``"srgan"`` (Ledig et al. 2017): 9x9 head conv + PReLU, residual blocks
      ``conv-BN-PReLU-conv-BN``, conv3x3-BN before the long skip, 9x9 tail conv.
    * ``"edsrgan"`` (Wang et al. 2019, the micro-CT generator): batch norm removed (EDSR style),
      3x3 head conv with no activation, residual blocks ``conv-PReLU-conv``, 1x1 tail conv.

    Every conv has a bias; every PReLU has ONE shared slope (PyTorch's default
    ``num_parameters=1``). With ``in_chans = out_chans = 1``, ``chans = 64``, ``num_blocks = 1``,
    ``num_upsample = 2`` the ``"edsrgan"`` variant has exactly 406,916 parameters:
    head 640, residual block 36,928 + 1 + 36,928, conv before the long skip 36,928, two
    up-sampling stages 2 x (147,712 + 1), tail 65. (The ``"srgan"`` layout cannot reach that
    count: its two 9x9 convs alone exceed it once the other layers are counted.)

    Args:
        in_chans: input channels.
        out_chans: output channels.
        chans: feature channels ``C``.
        num_blocks: residual blocks (16 in both papers' full-size models).
        num_upsample: x2 pixel-shuffle stages.
        variant: ``"srgan"`` or ``"edsrgan"``, see above.

    Shapes: ``(B, in_chans, H, W)`` -> ``(B, out_chans, s H, s W)`` with ``s = 2**num_upsample``;
    any ``H, W``.
    """

    def __init__(
        self,
        in_chans: int = 1,
        out_chans: int = 1,
        chans: int = 64,
        num_blocks: int = 16,
        num_upsample: int = 2,
        variant: Literal["srgan", "edsrgan"] = "srgan",
    ):
        super().__init__()
        if variant not in ("srgan", "edsrgan"):
            raise UserError(
                f"SRGANGenerator: variant must be 'srgan' or 'edsrgan', got {variant!r}"
            )
        self.in_chans = in_chans
        batch_norm = variant == "srgan"
        head_kernel, tail_kernel = (9, 9) if variant == "srgan" else (3, 1)

        head: list[nn.Module] = [nn.Conv2d(in_chans, chans, head_kernel, padding=head_kernel // 2)]
        if variant == "srgan":
            head.append(nn.PReLU())
        self.head = nn.Sequential(*head)
        body: list[nn.Module] = [_ResidualBlock(chans, batch_norm) for _ in range(num_blocks)]
        body.append(nn.Conv2d(chans, chans, 3, padding=1))
        if batch_norm:
            body.append(nn.BatchNorm2d(chans))
        self.body = nn.Sequential(*body)
        upsample: list[nn.Module] = []
        for _ in range(num_upsample):
            upsample += [
                nn.Conv2d(chans, 4 * chans, 3, padding=1),
                nn.PixelShuffle(2),
                nn.PReLU(),
            ]
        self.upsample = nn.Sequential(*upsample)
        self.tail = nn.Conv2d(chans, out_chans, tail_kernel, padding=tail_kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_chans, H, W)`` -> ``(B, out_chans, s H, s W)``."""
        self.check_input(x, self.in_chans)
        features = self.head(x)
        features = features + self.body(features)
        return self.tail(self.upsample(features))

    @classmethod
    def example(cls) -> tuple[SRGANGenerator, torch.Tensor]:
        """A 1-block, 8-channel x4 generator on a ``(2, 1, 5, 7)`` input."""
        return cls(chans=8, num_blocks=1), torch.randn(2, 1, 5, 7)


def _valid_conv_size(size: int, stride: int) -> int:
    """Output length of an unpadded 3-tap convolution with ``stride``."""
    return (size - 3) // stride + 1


class SRGANDiscriminator(Model):
    """The SRGAN discriminator: eight 3x3 convs with LeakyReLU(0.2), then a dense head.

    ``conv(64) -> LeakyReLU``, then seven ``conv -> BN -> LeakyReLU`` blocks with
    (channels, stride) = (64, 2), (128, 1), (128, 2), (256, 1), (256, 2), (512, 1), (512, 2)
    (Ledig et al. 2017), then ``Flatten -> Linear(512 h w, 1024) -> LeakyReLU -> Linear(1024, 1)``.
    The output is a logit (apply the sigmoid in the loss, e.g. ``BCEWithLogitsLoss``).

    The convolutions are unpadded ("valid"), as in the micro-CT reference (Wang et al. 2019),
    so each conv trims 2 pixels before striding: ``n -> (n - 3) // stride + 1``. For a 192x192
    input: 192 -> 190 -> 94 -> 92 -> 45 -> 43 -> 21 -> 19 -> 9, so the dense layer sees
    ``512 * 9 * 9 = 41,472`` features (not ``512 * 12 * 12`` as with padded convs). Parameters
    with one input channel: convs 640 + 36,928 + 73,856 + 147,584 + 295,168 + 590,080 +
    1,180,160 + 2,359,808 = 4,684,224; batch norms 128 + 256 + 256 + 512 + 512 + 1,024 + 1,024 =
    3,712; dense 41,472 * 1,024 + 1,024 = 42,468,352 and 1,025; total 47,157,313.

    Args:
        in_chans: input channels.
        input_size: the input's ``H`` (int, square) or ``(H, W)``; fixes the dense layer's size.
            It must be at least 61 pixels per side (at least one pixel after the last conv).

    Shapes: ``(B, in_chans, H, W)`` -> ``(B, 1)`` logits.
    """

    _BLOCKS = ((64, 2), (128, 1), (128, 2), (256, 1), (256, 2), (512, 1), (512, 2))

    def __init__(self, in_chans: int = 1, input_size: int | tuple[int, int] = 96):
        super().__init__()
        h, w = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
        self.in_chans = in_chans
        self.input_size = (h, w)

        layers: list[nn.Module] = [
            nn.Conv2d(in_chans, 64, 3),
            nn.LeakyReLU(_LEAKY_SLOPE, inplace=True),
        ]
        feature_h, feature_w = _valid_conv_size(h, 1), _valid_conv_size(w, 1)
        chans = 64
        too_small = feature_h < 1 or feature_w < 1
        for out_chans, stride in self._BLOCKS:
            layers += [
                nn.Conv2d(chans, out_chans, 3, stride=stride),
                nn.BatchNorm2d(out_chans),
                nn.LeakyReLU(_LEAKY_SLOPE, inplace=True),
            ]
            chans = out_chans
            feature_h = _valid_conv_size(feature_h, stride)
            feature_w = _valid_conv_size(feature_w, stride)
            too_small = too_small or feature_h < 1 or feature_w < 1
        if too_small:
            raise UserError(
                f"SRGANDiscriminator: input_size {self.input_size} is too small; "
                f"H and W must be at least 61"
            )
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(chans * feature_h * feature_w, 1024),
            nn.LeakyReLU(_LEAKY_SLOPE, inplace=True),
            nn.Linear(1024, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_chans, H, W)`` -> ``(B, 1)`` logits."""
        expected = (self.in_chans, *self.input_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise UserError(
                f"SRGANDiscriminator expects input of shape (B, {expected[0]}, {expected[1]}, "
                f"{expected[2]}) (set input_size), got {tuple(x.shape)}"
            )
        return self.classifier(self.features(x))

    @classmethod
    def example(cls) -> tuple[SRGANDiscriminator, torch.Tensor]:
        """A discriminator for ``(3, 1, 61, 64)`` inputs (the smallest sizes: 1x1 features)."""
        return cls(input_size=(61, 64)), torch.randn(3, 1, 61, 64)
