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
from deepinv_lab.models.layers import (
    avg_pool,
    check_spatial_dims,
    conv,
    conv_transpose,
    dropout,
    instance_norm,
    spatial_names,
)

_LEAKY_SLOPE = 0.2


def _norm(chans: int, bias_free: bool, spatial_dims: int) -> nn.Module:
    # Instance norm divides by the current sample's std: a bias-free U-Net with it would be
    # scale-invariant, not homogeneous. BiasFreeBatchNorm2d divides by a constant in eval mode.
    return BiasFreeBatchNorm2d(chans) if bias_free else instance_norm(spatial_dims)(chans)


class ConvBlock(nn.Module):
    """Two ``3x3 conv -> instance norm -> LeakyReLU(0.2) -> dropout`` stages.

    With ``bias_free=True`` the instance norm is a :class:`BiasFreeBatchNorm2d`. With
    ``spatial_dims=3`` the convolutions are 3x3x3 and the norm and dropout are their 3D versions.

    Shapes: ``(B, in_chans, *spatial)`` -> ``(B, out_chans, *spatial)``.
    """

    def __init__(
        self,
        in_chans: int,
        out_chans: int,
        drop_prob: float,
        bias_free: bool = False,
        spatial_dims: int = 2,
    ):
        super().__init__()
        stages: list[nn.Module] = []
        for stage_in in (in_chans, out_chans):
            stages += [
                conv(spatial_dims)(stage_in, out_chans, kernel_size=3, padding=1, bias=False),
                _norm(out_chans, bias_free, spatial_dims),
                nn.LeakyReLU(negative_slope=_LEAKY_SLOPE, inplace=True),
                dropout(spatial_dims)(drop_prob),
            ]
        self.layers = nn.Sequential(*stages)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class TransposeConvBlock(nn.Module):
    """``2x2 stride-2 transpose conv -> instance norm -> LeakyReLU(0.2)``: doubles every
    spatial size.

    With ``bias_free=True`` the instance norm is a :class:`BiasFreeBatchNorm2d`.

    Shapes: ``(B, in_chans, H, W)`` -> ``(B, out_chans, 2H, 2W)``; in 3D
    ``(B, in_chans, D, H, W)`` -> ``(B, out_chans, 2D, 2H, 2W)``.
    """

    def __init__(
        self, in_chans: int, out_chans: int, bias_free: bool = False, spatial_dims: int = 2
    ):
        super().__init__()
        self.layers = nn.Sequential(
            conv_transpose(spatial_dims)(in_chans, out_chans, kernel_size=2, stride=2, bias=False),
            _norm(out_chans, bias_free, spatial_dims),
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
    the right/bottom (and back, in 3D), so any ``H, W >= 2**num_pool_layers`` works (in training,
    instance norm also needs more than one pixel at the bottleneck). With ``spatial_dims=3`` every
    layer is its 3D version (3x3x3 convs, 2x2x2 pooling and transpose convs) and the same holds
    for ``D, H, W``.

    Args:
        in_chans: input channels.
        out_chans: output channels.
        chans: channels of the first stage.
        num_pool_layers: number of down-/up-sampling stages.
        drop_prob: ``Dropout2d`` (``Dropout3d``) probability after every convolution.
        bias_free: build the bias-free variant (not fastMRI-compatible).
        spatial_dims: 2 for images, 3 for volumes.

    Shapes: ``(B, in_chans, H, W)`` -> ``(B, out_chans, H, W)``, real; in 3D
    ``(B, in_chans, D, H, W)`` -> ``(B, out_chans, D, H, W)``.
    """

    def __init__(
        self,
        in_chans: int,
        out_chans: int,
        chans: int = 32,
        num_pool_layers: int = 4,
        drop_prob: float = 0.0,
        bias_free: bool = False,
        spatial_dims: int = 2,
    ):
        super().__init__()
        self.spatial_dims = check_spatial_dims(spatial_dims, type(self).__name__)
        self.in_chans = in_chans
        self.out_chans = out_chans
        self.chans = chans
        self.num_pool_layers = num_pool_layers
        self.drop_prob = drop_prob
        self.bias_free = bias_free
        dims = spatial_dims

        self.down_sample_layers = nn.ModuleList(
            [ConvBlock(in_chans, chans, drop_prob, bias_free, dims)]
        )
        ch = chans
        for _ in range(num_pool_layers - 1):
            self.down_sample_layers.append(ConvBlock(ch, 2 * ch, drop_prob, bias_free, dims))
            ch *= 2
        self.conv = ConvBlock(ch, 2 * ch, drop_prob, bias_free, dims)

        # Registration order (up_conv before up_transpose_conv) matches fastMRI's state_dict order.
        self.up_conv = nn.ModuleList()
        self.up_transpose_conv = nn.ModuleList()
        for _ in range(num_pool_layers - 1):
            self.up_transpose_conv.append(TransposeConvBlock(2 * ch, ch, bias_free, dims))
            self.up_conv.append(ConvBlock(2 * ch, ch, drop_prob, bias_free, dims))
            ch //= 2
        self.up_transpose_conv.append(TransposeConvBlock(2 * ch, ch, bias_free, dims))
        self.up_conv.append(
            nn.Sequential(
                ConvBlock(2 * ch, ch, drop_prob, bias_free, dims),
                conv(dims)(ch, out_chans, kernel_size=1, stride=1, bias=not bias_free),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_chans, *spatial)`` -> ``(B, out_chans, *spatial)``."""
        name = type(self).__name__
        dims = self.spatial_dims
        self.check_input(x, self.in_chans)
        min_size = 2**self.num_pool_layers
        if min(x.shape[-dims:]) < min_size:
            raise UserError(
                f"{name} with num_pool_layers={self.num_pool_layers} expects "
                f"{spatial_names(dims)} >= {min_size}, got input of shape {tuple(x.shape)}; "
                f"use larger {'images' if dims == 2 else 'volumes'} or a smaller num_pool_layers"
            )
        pool = avg_pool(dims)
        skips = []
        out = x
        for down in self.down_sample_layers:
            out = down(out)
            skips.append(out)
            out = pool(out, kernel_size=2, stride=2, padding=0)

        out = self.conv(out)

        for transpose_conv, up_conv in zip(self.up_transpose_conv, self.up_conv, strict=True):
            skip = skips.pop()
            out = transpose_conv(out)
            # Average pooling floors odd sizes; the up-sampled map is then one pixel short.
            # F.pad lists the last dimension first: [0, right, 0, bottom(, 0, back)].
            padding = []
            for dim in range(-1, -dims - 1, -1):
                padding += [0, int(out.shape[dim] != skip.shape[dim])]
            if any(padding):
                out = F.pad(out, padding, mode="reflect")
            out = up_conv(torch.cat([out, skip], dim=1))
        return out

    @classmethod
    def example(cls) -> tuple[Unet, torch.Tensor]:
        """A 2-level U-Net with 4 channels on a ``(2, 3, 19, 22)`` input (odd size on purpose)."""
        return cls(3, 2, chans=4, num_pool_layers=2), torch.randn(2, 3, 19, 22)

    @classmethod
    def example_3d(cls) -> tuple[Unet, torch.Tensor]:
        """A 2-level 3D U-Net with 2 channels on a ``(2, 2, 9, 8, 10)`` volume (odd depth)."""
        model = cls(2, 1, chans=2, num_pool_layers=2, spatial_dims=3)
        return model, torch.randn(2, 2, 9, 8, 10)


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
        spatial_dims: int = 2,
    ):
        super().__init__(
            in_chans, out_chans, chans, num_pool_layers, drop_prob, bias_free, spatial_dims
        )


class NormUnet(Model):
    """fastMRI's normalised U-Net on complex images, the regulariser of E2E-VarNet.

    The complex input is split into real channels ``[re_0..re_{C-1}, im_0..im_{C-1}]``
    (:func:`~deepinv_lab.functional.complex_to_channels`, fastMRI's ``complex_to_chan_dim``
    layout); the real channels and the imaginary channels are each normalised by their own mean and
    (unbiased) standard deviation over channels and pixels; the result is zero-padded
    symmetrically (extra pixel right/bottom) to a multiple of 16 in H and W, passed through the
    :class:`Unet`, cropped back and un-normalised. With ``spatial_dims=3`` the same holds for
    volumes: the statistics are over channels and voxels, and D, H and W are each padded to a
    multiple of 16 (extra voxel at the back) around a 3D :class:`Unet`.

    Args:
        chans: channels of the U-Net's first stage.
        num_pool_layers: U-Net down-/up-sampling stages (fastMRI's ``num_pools``).
        in_chans: real input channels of the U-Net, ``2 * C`` for ``C`` complex channels.
        out_chans: real output channels, ``2 * C_out``.
        drop_prob: dropout probability.
        spatial_dims: 2 for images, 3 for volumes.

    Shapes: ``(B, in_chans // 2, H, W)`` complex -> ``(B, out_chans // 2, H, W)`` complex; in 3D
    ``(B, in_chans // 2, D, H, W)`` -> ``(B, out_chans // 2, D, H, W)``.
    A constant input (zero standard deviation) gives NaNs, as in fastMRI.
    """

    def __init__(
        self,
        chans: int,
        num_pool_layers: int,
        in_chans: int = 2,
        out_chans: int = 2,
        drop_prob: float = 0.0,
        spatial_dims: int = 2,
    ):
        super().__init__()
        self.spatial_dims = check_spatial_dims(spatial_dims, type(self).__name__)
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
            spatial_dims=spatial_dims,
        )

    @staticmethod
    def _pad_to_16(
        x: torch.Tensor, spatial_dims: int = 2
    ) -> tuple[torch.Tensor, tuple[slice, ...]]:
        """Zero-pad the last ``spatial_dims`` sizes up to the next multiple of 16 (the extra
        pixel of an odd padding on the far side); return the slices that undo it."""
        padding: list[int] = []
        crops: list[slice] = []
        for size in x.shape[-spatial_dims:]:
            total = -size % 16
            before = total // 2
            crops.append(slice(before, before + size))
            padding = [before, total - before, *padding]  # F.pad lists the last dim first
        return F.pad(x, padding), tuple(crops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, *spatial)`` complex -> ``(B, C_out, *spatial)`` complex."""
        dims = self.spatial_dims
        if not x.is_complex() or x.ndim != 2 + dims or 2 * x.shape[1] != self.unet.in_chans:
            name = "NormUnet" if dims == 2 else f"NormUnet(spatial_dims={dims})"
            hint = (
                f"; set spatial_dims={x.ndim - 2}"
                if x.ndim in (4, 5) and x.ndim != 2 + dims
                else ""
            )
            raise UserError(
                f"{name} expects complex input of shape (B, {self.unet.in_chans // 2}, "
                f"{spatial_names(dims)}), got dtype {x.dtype} with shape {tuple(x.shape)}{hint}"
            )
        channels = complex_to_channels(x)
        normed, mean, std = normalise_complex_channels(channels)
        padded, crops = self._pad_to_16(normed, dims)
        out = self.unet(padded)[(..., *crops)]
        return channels_to_complex(denormalise_complex_channels(out, mean, std))

    @classmethod
    def example(cls) -> tuple[NormUnet, torch.Tensor]:
        """A small NormUnet on a ``(2, 1, 13, 18)`` complex input."""
        return cls(chans=4, num_pool_layers=2), torch.randn(2, 1, 13, 18, dtype=torch.complex64)

    @classmethod
    def example_3d(cls) -> tuple[NormUnet, torch.Tensor]:
        """A small 3D NormUnet on a ``(1, 1, 7, 9, 8)`` complex volume (padded to 16^3)."""
        model = cls(chans=2, num_pool_layers=2, spatial_dims=3)
        return model, torch.randn(1, 1, 7, 9, 8, dtype=torch.complex64)
