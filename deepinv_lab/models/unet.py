"""U-Nets in the fastMRI layout: the plain :class:`Unet` and the normalised complex
:class:`NormUnet`.

The module and parameter names follow ``fastmri.models.Unet`` / ``fastmri.models.NormUnet``
(``down_sample_layers``, ``conv``, ``up_conv``, ``up_transpose_conv``, each block's ``layers``
``nn.Sequential``; ``NormUnet.unet``), so fastMRI state dicts load here unchanged and vice versa.

References:
    O. Ronneberger, P. Fischer, T. Brox, "U-Net: Convolutional networks for biomedical image
    segmentation", MICCAI 2015.
    J. Zbontar et al., "fastMRI: An open dataset and benchmarks for accelerated MRI", 2018.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepinv_lab.errors import UserError
from deepinv_lab.functional import channels_to_complex, complex_to_channels
from deepinv_lab.models.base import Model
from deepinv_lab.models.complex_norm import (
    denormalise_complex_channels,
    normalise_complex_channels,
)
from deepinv_lab.models.dncnn import BiasFreeBatchNorm2d

_LEAKY_SLOPE = 0.2


def _norm(chans: int, bias_free: bool) -> nn.Module:
    # Instance norm divides by the current sample's std: a bias-free U-Net with it would be
    # scale-invariant, not homogeneous. BiasFreeBatchNorm2d divides by a constant in eval mode.
    return BiasFreeBatchNorm2d(chans) if bias_free else nn.InstanceNorm2d(chans)


class ConvBlock(nn.Module):
    """Two ``3x3 conv -> instance norm -> LeakyReLU(0.2) -> dropout`` stages.

    With ``bias_free=True`` the instance norm is a :class:`BiasFreeBatchNorm2d`.

    Shapes: ``(B, in_chans, H, W)`` -> ``(B, out_chans, H, W)``.
    """

    def __init__(self, in_chans: int, out_chans: int, drop_prob: float, bias_free: bool = False):
        super().__init__()
        stages: list[nn.Module] = []
        for stage_in in (in_chans, out_chans):
            stages += [
                nn.Conv2d(stage_in, out_chans, kernel_size=3, padding=1, bias=False),
                _norm(out_chans, bias_free),
                nn.LeakyReLU(negative_slope=_LEAKY_SLOPE, inplace=True),
                nn.Dropout2d(drop_prob),
            ]
        self.layers = nn.Sequential(*stages)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class TransposeConvBlock(nn.Module):
    """``2x2 stride-2 transpose conv -> instance norm -> LeakyReLU(0.2)``: doubles H and W.

    With ``bias_free=True`` the instance norm is a :class:`BiasFreeBatchNorm2d`.

    Shapes: ``(B, in_chans, H, W)`` -> ``(B, out_chans, 2H, 2W)``.
    """

    def __init__(self, in_chans: int, out_chans: int, bias_free: bool = False):
        super().__init__()
        self.layers = nn.Sequential(
            nn.ConvTranspose2d(in_chans, out_chans, kernel_size=2, stride=2, bias=False),
            _norm(out_chans, bias_free),
            nn.LeakyReLU(negative_slope=_LEAKY_SLOPE, inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class Unet(Model):
    """The fastMRI U-Net on real images.

    ``num_pool_layers`` encoder stages (:class:`ConvBlock` then 2x2 average pooling) double the
    channels from ``chans``; a bottleneck :class:`ConvBlock`; as many decoder stages (transpose
    conv, concatenation with the skip connection, :class:`ConvBlock`); a final 1x1 convolution.
    When an encoder size was odd, the up-sampled map is one pixel short and is reflect-padded on
    the right/bottom, so any ``H, W >= 2**num_pool_layers`` works (in training, instance norm also
    needs more than one pixel at the bottleneck).

    Args:
        in_chans: input channels.
        out_chans: output channels.
        chans: channels of the first stage.
        num_pool_layers: number of down-/up-sampling stages.
        drop_prob: ``Dropout2d`` probability after every convolution.
        bias_free: build the bias-free variant (not fastMRI-compatible).

    Shapes: ``(B, in_chans, H, W)`` -> ``(B, out_chans, H, W)``, real.
    """

    def __init__(
        self,
        in_chans: int,
        out_chans: int,
        chans: int = 32,
        num_pool_layers: int = 4,
        drop_prob: float = 0.0,
        bias_free: bool = False,
    ):
        super().__init__()
        self.in_chans = in_chans
        self.out_chans = out_chans
        self.chans = chans
        self.num_pool_layers = num_pool_layers
        self.drop_prob = drop_prob
        self.bias_free = bias_free

        self.down_sample_layers = nn.ModuleList([ConvBlock(in_chans, chans, drop_prob, bias_free)])
        ch = chans
        for _ in range(num_pool_layers - 1):
            self.down_sample_layers.append(ConvBlock(ch, 2 * ch, drop_prob, bias_free))
            ch *= 2
        self.conv = ConvBlock(ch, 2 * ch, drop_prob, bias_free)

        # Registration order (up_conv before up_transpose_conv) matches fastMRI's state_dict order.
        self.up_conv = nn.ModuleList()
        self.up_transpose_conv = nn.ModuleList()
        for _ in range(num_pool_layers - 1):
            self.up_transpose_conv.append(TransposeConvBlock(2 * ch, ch, bias_free))
            self.up_conv.append(ConvBlock(2 * ch, ch, drop_prob, bias_free))
            ch //= 2
        self.up_transpose_conv.append(TransposeConvBlock(2 * ch, ch, bias_free))
        self.up_conv.append(
            nn.Sequential(
                ConvBlock(2 * ch, ch, drop_prob, bias_free),
                nn.Conv2d(ch, out_chans, kernel_size=1, stride=1, bias=not bias_free),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_chans, H, W)`` -> ``(B, out_chans, H, W)``."""
        name = type(self).__name__
        self.check_input(x, self.in_chans)
        min_size = 2**self.num_pool_layers
        if min(x.shape[-2:]) < min_size:
            raise UserError(
                f"{name} with num_pool_layers={self.num_pool_layers} expects H, W >= {min_size}, "
                f"got input of shape {tuple(x.shape)}; use larger images or a smaller "
                "num_pool_layers"
            )
        skips = []
        out = x
        for down in self.down_sample_layers:
            out = down(out)
            skips.append(out)
            out = F.avg_pool2d(out, kernel_size=2, stride=2, padding=0)

        out = self.conv(out)

        for transpose_conv, conv in zip(self.up_transpose_conv, self.up_conv, strict=True):
            skip = skips.pop()
            out = transpose_conv(out)
            # Average pooling floors odd sizes; the up-sampled map is then one pixel short.
            pad_right = int(out.shape[-1] != skip.shape[-1])
            pad_bottom = int(out.shape[-2] != skip.shape[-2])
            if pad_right or pad_bottom:
                out = F.pad(out, [0, pad_right, 0, pad_bottom], mode="reflect")
            out = conv(torch.cat([out, skip], dim=1))
        return out

    @classmethod
    def example(cls) -> tuple[Unet, torch.Tensor]:
        """A 2-level U-Net with 4 channels on a ``(2, 3, 19, 22)`` input (odd size on purpose)."""
        return cls(3, 2, chans=4, num_pool_layers=2), torch.randn(2, 3, 19, 22)


class BiasFreeUnet(Unet):
    """:class:`Unet` with ``bias_free=True`` by default: ``f(a x) = a f(x)`` in eval mode."""

    def __init__(
        self,
        in_chans: int,
        out_chans: int,
        chans: int = 32,
        num_pool_layers: int = 4,
        drop_prob: float = 0.0,
        bias_free: bool = True,
    ):
        super().__init__(in_chans, out_chans, chans, num_pool_layers, drop_prob, bias_free)


class NormUnet(Model):
    """fastMRI's normalised U-Net on complex images, the regulariser of E2E-VarNet.

    The complex input is split into real channels ``[re_0..re_{C-1}, im_0..im_{C-1}]``
    (:func:`~deepinv_lab.functional.complex_to_channels`, fastMRI's ``complex_to_chan_dim``
    layout); the real channels and the imaginary channels are each normalised by their own mean and
    (unbiased) standard deviation over channels and pixels; the result is zero-padded
    symmetrically (extra pixel right/bottom) to a multiple of 16 in H and W, passed through the
    :class:`Unet`, cropped back and un-normalised.

    Args:
        chans: channels of the U-Net's first stage.
        num_pool_layers: U-Net down-/up-sampling stages (fastMRI's ``num_pools``).
        in_chans: real input channels of the U-Net, ``2 * C`` for ``C`` complex channels.
        out_chans: real output channels, ``2 * C_out``.
        drop_prob: dropout probability.

    Shapes: ``(B, in_chans // 2, H, W)`` complex -> ``(B, out_chans // 2, H, W)`` complex.
    A constant input (zero standard deviation) gives NaNs, as in fastMRI.
    """

    def __init__(
        self,
        chans: int,
        num_pool_layers: int,
        in_chans: int = 2,
        out_chans: int = 2,
        drop_prob: float = 0.0,
    ):
        super().__init__()
        if in_chans % 2 or out_chans % 2:
            raise UserError(
                f"NormUnet: in_chans and out_chans count real channels (2 per complex channel) "
                f"and must be even, got in_chans={in_chans}, out_chans={out_chans}"
            )
        self.unet = Unet(
            in_chans=in_chans,
            out_chans=out_chans,
            chans=chans,
            num_pool_layers=num_pool_layers,
            drop_prob=drop_prob,
        )

    @staticmethod
    def _pad_to_16(x: torch.Tensor) -> tuple[torch.Tensor, tuple[slice, slice]]:
        """Zero-pad H and W up to the next multiple of 16; return the slices that undo it."""
        h, w = x.shape[-2:]
        h_total = -h % 16
        w_total = -w % 16
        top, left = h_total // 2, w_total // 2
        padded = F.pad(x, [left, w_total - left, top, h_total - top])
        return padded, (slice(top, top + h), slice(left, left + w))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` complex -> ``(B, C_out, H, W)`` complex."""
        if not x.is_complex() or x.ndim != 4 or 2 * x.shape[1] != self.unet.in_chans:
            raise ValueError(
                f"NormUnet expects complex input of shape (B, {self.unet.in_chans // 2}, H, W), "
                f"got dtype {x.dtype} with shape {tuple(x.shape)}"
            )
        channels = complex_to_channels(x)
        normed, mean, std = normalise_complex_channels(channels)
        padded, (rows, cols) = self._pad_to_16(normed)
        out = self.unet(padded)[..., rows, cols]
        return channels_to_complex(denormalise_complex_channels(out, mean, std))

    @classmethod
    def example(cls) -> tuple[NormUnet, torch.Tensor]:
        """A small NormUnet on a ``(2, 1, 13, 18)`` complex input."""
        return cls(chans=4, num_pool_layers=2), torch.randn(2, 1, 13, 18, dtype=torch.complex64)
