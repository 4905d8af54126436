"""SRGAN generator and discriminator for x2^k single-image super-resolution.

References:
    C. Ledig et al., "Photo-realistic single image super-resolution using a generative adversarial
    network", CVPR 2017 (SRGAN).
    Y. D. Wang, R. T. Armstrong, P. Mostaghimi, "Boosting resolution and recovering texture of 2D
    and 3D micro-CT images with deep learning", Water Resources Research 2019 (EDSRGAN, the
    micro-CT variant).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from deepinv_lab.errors import UserError
from deepinv_lab.models.base import Model
from deepinv_lab.models.layers import (
    batch_norm,
    check_spatial_dims,
    conv,
    pixel_shuffle,
    spatial_names,
)

_LEAKY_SLOPE = 0.2


class _ResidualBlock(nn.Module):
    """``x + conv3x3(act(conv3x3(x)))``, with batch norm after each conv when ``batch_norm``."""

    def __init__(self, chans: int, use_batch_norm: bool, spatial_dims: int = 2):
        super().__init__()
        conv_nd, norm_nd = conv(spatial_dims), batch_norm(spatial_dims)
        layers: list[nn.Module] = [conv_nd(chans, chans, 3, padding=1)]
        if use_batch_norm:
            layers.append(norm_nd(chans))
        layers += [nn.PReLU(), conv_nd(chans, chans, 3, padding=1)]
        if use_batch_norm:
            layers.append(norm_nd(chans))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x)


class SRGANGenerator(Model):
    """The SRGAN generator: a residual network followed by sub-pixel (pixel-shuffle) up-sampling.

    ``head -> num_blocks residual blocks -> conv3x3 [-> BN] (+ long skip from the head) ->
    num_upsample x [conv3x3 (C -> 4C) -> PixelShuffle(2) -> PReLU] -> tail conv -> out_chans``.
    The output is ``2**num_upsample`` times larger than the input in H and W (and D). With
    ``spatial_dims=3`` every conv is its 3D version (9x9x9, 3x3x3, 1x1x1), batch norm is
    ``BatchNorm3d``, and each up-sampling conv makes ``8C`` channels for a 3D pixel shuffle.
    Wang et al. (2019) train their micro-CT generator both ways.

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
        spatial_dims: 2 for images, 3 for volumes.

    Shapes: ``(B, in_chans, H, W)`` -> ``(B, out_chans, s H, s W)`` with ``s = 2**num_upsample``;
    any ``H, W``; in 3D ``(B, in_chans, D, H, W)`` -> ``(B, out_chans, s D, s H, s W)``.
    """

    def __init__(
        self,
        in_chans: int = 1,
        out_chans: int = 1,
        chans: int = 64,
        num_blocks: int = 16,
        num_upsample: int = 2,
        variant: Literal["srgan", "edsrgan"] = "srgan",
        spatial_dims: int = 2,
    ):
        super().__init__()
        self.spatial_dims = dims = check_spatial_dims(spatial_dims, "SRGANGenerator")
        if variant not in ("srgan", "edsrgan"):
            raise UserError(
                f"SRGANGenerator: variant must be 'srgan' or 'edsrgan', got {variant!r}"
            )
        self.in_chans = in_chans
        use_batch_norm = variant == "srgan"
        head_kernel, tail_kernel = (9, 9) if variant == "srgan" else (3, 1)
        conv_nd = conv(dims)

        head: list[nn.Module] = [conv_nd(in_chans, chans, head_kernel, padding=head_kernel // 2)]
        if variant == "srgan":
            head.append(nn.PReLU())
        self.head = nn.Sequential(*head)
        body: list[nn.Module] = [
            _ResidualBlock(chans, use_batch_norm, dims) for _ in range(num_blocks)
        ]
        body.append(conv_nd(chans, chans, 3, padding=1))
        if use_batch_norm:
            body.append(batch_norm(dims)(chans))
        self.body = nn.Sequential(*body)
        upsample: list[nn.Module] = []
        for _ in range(num_upsample):
            upsample += [
                conv_nd(chans, 2**dims * chans, 3, padding=1),
                pixel_shuffle(dims, 2),
                nn.PReLU(),
            ]
        self.upsample = nn.Sequential(*upsample)
        self.tail = conv_nd(chans, out_chans, tail_kernel, padding=tail_kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_chans, *spatial)`` -> ``(B, out_chans, *(s * spatial))``."""
        self.check_input(x, self.in_chans)
        features = self.head(x)
        features = features + self.body(features)
        return self.tail(self.upsample(features))

    @classmethod
    def example(cls) -> tuple[SRGANGenerator, torch.Tensor]:
        """A 1-block, 8-channel x4 generator on a ``(2, 1, 5, 7)`` input."""
        return cls(chans=8, num_blocks=1), torch.randn(2, 1, 5, 7)

    @classmethod
    def example_3d(cls) -> tuple[SRGANGenerator, torch.Tensor]:
        """A 1-block, 4-channel x2 ``"srgan"`` generator on a ``(2, 1, 4, 3, 5)`` volume."""
        model = cls(chans=4, num_blocks=1, num_upsample=1, spatial_dims=3)
        return model, torch.randn(2, 1, 4, 3, 5)


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

    With ``spatial_dims=3`` the convs are 3x3x3 (same rule per side) and batch norm is 3D, so the
    dense layer sees ``8 chans * d h w`` features, ``d, h, w`` the sizes after the last conv
    (a 96^3 volume: 96 -> 94 -> 46 -> 44 -> 21 -> 19 -> 9 -> 7 -> 3, so ``512 * 27``).

    Args:
        in_chans: input channels.
        input_size: the input's spatial size: an int (the same on every side) or a sequence of
            ``spatial_dims`` sizes (``(H, W)``, or ``(D, H, W)``); fixes the dense layer's size.
            It must be at least 61 per side (at least one pixel after the last conv).
        chans: channels of the first convs; the blocks have ``chans`` x (1, 2, 2, 4, 4, 8, 8)
            (64 in the papers; smaller widths keep 3D discriminators affordable).
        spatial_dims: 2 for images, 3 for volumes.

    Shapes: ``(B, in_chans, H, W)`` (or ``(B, in_chans, D, H, W)``) -> ``(B, 1)`` logits.
    """

    _BLOCKS = ((1, 2), (2, 1), (2, 2), (4, 1), (4, 2), (8, 1), (8, 2))

    def __init__(
        self,
        in_chans: int = 1,
        input_size: int | Sequence[int] = 96,
        chans: int = 64,
        spatial_dims: int = 2,
    ):
        super().__init__()
        self.spatial_dims = dims = check_spatial_dims(spatial_dims, "SRGANDiscriminator")
        if isinstance(input_size, int):
            sizes = (input_size,) * dims
        else:
            sizes = tuple(int(size) for size in input_size)
            if len(sizes) != dims:
                raise UserError(
                    f"SRGANDiscriminator(spatial_dims={dims}): input_size must be an int or "
                    f"{dims} sizes ({spatial_names(dims)}), got {tuple(input_size)}"
                )
        self.in_chans = in_chans
        self.input_size = sizes
        conv_nd, norm_nd = conv(dims), batch_norm(dims)

        layers: list[nn.Module] = [
            conv_nd(in_chans, chans, 3),
            nn.LeakyReLU(_LEAKY_SLOPE, inplace=True),
        ]
        feature_sizes = [_valid_conv_size(size, 1) for size in sizes]
        too_small = min(feature_sizes) < 1
        stage_in = chans
        for multiple, stride in self._BLOCKS:
            stage_out = multiple * chans
            layers += [
                conv_nd(stage_in, stage_out, 3, stride=stride),
                norm_nd(stage_out),
                nn.LeakyReLU(_LEAKY_SLOPE, inplace=True),
            ]
            stage_in = stage_out
            feature_sizes = [_valid_conv_size(size, stride) for size in feature_sizes]
            too_small = too_small or min(feature_sizes) < 1
        if too_small:
            raise UserError(
                f"SRGANDiscriminator: input_size {self.input_size} is too small; "
                f"{spatial_names(dims)} must be at least 61"
            )
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(stage_in * math.prod(feature_sizes), 1024),
            nn.LeakyReLU(_LEAKY_SLOPE, inplace=True),
            nn.Linear(1024, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_chans, *input_size)`` -> ``(B, 1)`` logits."""
        expected = (self.in_chans, *self.input_size)
        if x.ndim != 2 + self.spatial_dims or tuple(x.shape[1:]) != expected:
            name = type(self).__name__
            if self.spatial_dims != 2:
                name += f"(spatial_dims={self.spatial_dims})"
            raise UserError(
                f"{name} expects input of shape (B, {', '.join(map(str, expected))}) "
                f"(set input_size), got {tuple(x.shape)}"
            )
        return self.classifier(self.features(x))

    @classmethod
    def example(cls) -> tuple[SRGANDiscriminator, torch.Tensor]:
        """A discriminator for ``(3, 1, 61, 64)`` inputs (the smallest sizes: 1x1 features)."""
        return cls(input_size=(61, 64)), torch.randn(3, 1, 61, 64)

    @classmethod
    def example_3d(cls) -> tuple[SRGANDiscriminator, torch.Tensor]:
        """A 2-channel-wide 3D discriminator for ``(2, 1, 61, 61, 62)`` volumes (the smallest)."""
        model = cls(input_size=(61, 61, 62), chans=2, spatial_dims=3)
        return model, torch.randn(2, 1, 61, 61, 62)
