"""RCAN: the residual channel-attention network for super-resolution and restoration.

Layout (module names are the ones :meth:`RCAN.freeze` accepts)::

    head   3x3 conv in_chans -> chans
    body   num_groups ResidualGroups ("body.0" .. "body.{G-1}"), then a 3x3 conv ("body.{G}");
           long skip: body(f) + f
    tail   upsampler ("tail.0": [3x3 conv C -> 4C, PixelShuffle(2)] x n for scale 2^n, or
           [3x3 conv C -> 9C, PixelShuffle(3)] for scale 3, empty for scale 1), then a 3x3 conv
           chans -> out_chans ("tail.1")

With ``spatial_dims=3`` (volumes) every convolution is 3x3x3 (1x1x1), channel attention pools
over all three spatial dimensions, and the upsampler's convs produce ``s^3 C`` channels for a
3D pixel shuffle (:func:`~deepinv_lab.models.layers.pixel_shuffle_nd`) by ``s``.

A ResidualGroup is ``num_blocks`` RCABs, a 3x3 conv and a group skip; an RCAB is
``x + res_scale * CA(conv(ReLU(conv(x))))`` with channel attention
``CA(f) = f * sigmoid(W_up ReLU(W_down avgpool(f)))`` (1x1 convs with bias, squeeze ratio
``reduction``).

The standard x4 model (``RCAN()``: 10 groups x 20 blocks, 64 channels, reduction 16, RGB) has
15,592,355 parameters, the count of the paper's reference code, which keeps its RGB mean shift in
frozen (``requires_grad=False``) convolutions left out of that count. Here the optional mean shift
(``rgb_mean``) is a buffer, so every parameter is trainable and the count holds with or without it.

Reference:
    Y. Zhang, K. Li, K. Li, L. Wang, B. Zhong, Y. Fu, "Image super-resolution using very deep
    residual channel attention networks", ECCV 2018.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from deepinv_lab.errors import UserError
from deepinv_lab.models.base import Model
from deepinv_lab.models.layers import adaptive_avg_pool, check_spatial_dims, conv, pixel_shuffle


def _conv(
    in_chans: int, out_chans: int, kernel_size: int = 3, spatial_dims: int = 2
) -> nn.Conv2d | nn.Conv3d:
    return conv(spatial_dims)(in_chans, out_chans, kernel_size, padding=kernel_size // 2, bias=True)


class ChannelAttention(nn.Module):
    """``f * sigmoid(W_up ReLU(W_down mean_{spatial}(f)))``, the mean over all spatial dims.

    Shapes: ``(B, C, *spatial)`` -> same.
    """

    def __init__(self, chans: int, reduction: int, inplace: bool = False, spatial_dims: int = 2):
        super().__init__()
        squeezed = max(chans // reduction, 1)
        self.attention = nn.Sequential(
            adaptive_avg_pool(spatial_dims)(1),
            _conv(chans, squeezed, 1, spatial_dims),
            nn.ReLU(inplace=inplace),
            _conv(squeezed, chans, 1, spatial_dims),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.attention(x)


class RCAB(nn.Module):
    """Residual channel-attention block: ``x + res_scale * CA(body(x))``.

    ``body`` is conv3x3-ReLU-conv3x3, or with ``bottleneck`` conv1x1 (chans -> chans //
    bottleneck_ratio)-ReLU-conv3x3-ReLU-conv1x1 (back to chans), as in SNU's fastMRI 2022 entry.
    Shapes: ``(B, C, *spatial)`` -> same.
    """

    def __init__(
        self,
        chans: int,
        reduction: int,
        res_scale: float = 1.0,
        bottleneck: bool = False,
        bottleneck_ratio: int = 4,
        inplace: bool = False,
        spatial_dims: int = 2,
    ):
        super().__init__()
        self.res_scale = res_scale
        dims = spatial_dims
        if bottleneck:
            inner = max(chans // bottleneck_ratio, 1)
            layers = [
                _conv(chans, inner, 1, dims),
                nn.ReLU(inplace=inplace),
                _conv(inner, inner, 3, dims),
                nn.ReLU(inplace=inplace),
                _conv(inner, chans, 1, dims),
            ]
        else:
            layers = [
                _conv(chans, chans, 3, dims),
                nn.ReLU(inplace=inplace),
                _conv(chans, chans, 3, dims),
            ]
        self.body = nn.Sequential(*layers, ChannelAttention(chans, reduction, inplace, dims))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.body(x)
        if self.res_scale != 1.0:
            residual = residual * self.res_scale
        return x + residual


class ResidualGroup(nn.Module):
    """``num_blocks`` RCABs, a 3x3 conv, and a group skip. Shapes: ``(B, C, *spatial)`` ->
    same."""

    def __init__(self, chans: int, num_blocks: int, spatial_dims: int = 2, **block_kwargs):
        super().__init__()
        self.body = nn.Sequential(
            *(RCAB(chans, spatial_dims=spatial_dims, **block_kwargs) for _ in range(num_blocks)),
            _conv(chans, chans, 3, spatial_dims),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _upsampler(chans: int, scale: int, spatial_dims: int = 2) -> nn.Sequential:
    dims = spatial_dims
    if scale == 1:
        return nn.Sequential()
    if scale == 3:
        return nn.Sequential(_conv(chans, 3**dims * chans, 3, dims), pixel_shuffle(dims, 3))
    if scale < 1 or scale & (scale - 1):
        raise UserError(f"RCAN: scale must be 1, 3 or a power of 2, got {scale}")
    layers: list[nn.Module] = []
    for _ in range(scale.bit_length() - 1):
        layers += [_conv(chans, 2**dims * chans, 3, dims), pixel_shuffle(dims, 2)]
    return nn.Sequential(*layers)


class RCAN(Model):
    """Residual channel-attention network (Zhang et al., ECCV 2018); see the module docstring.

    Args:
        in_chans, out_chans: image channels in and out.
        chans: feature channels.
        num_groups: residual groups; num_blocks: RCABs per group.
        reduction: channel-attention squeeze ratio.
        scale: upsampling factor (1 = same-size restoration, 3, or a power of 2).
        res_scale: factor on each RCAB's residual.
        bottleneck, bottleneck_ratio: 1x1-3x3-1x1 RCAB bodies with ``chans // bottleneck_ratio``
            inner channels.
        inplace_activations: in-place ReLUs (less activation memory, same results).
        checkpoint_groups: recompute each residual group in backward
            (``torch.utils.checkpoint``, ``use_reentrant=False``) while training with autograd:
            less activation memory, same outputs and gradients.
        frozen: sub-network names to freeze at construction, see :meth:`freeze`.
        rgb_mean: per-channel mean subtracted before ``head`` and added after ``tail`` (the
            original uses DIV2K's ``(0.4488, 0.4371, 0.4040)`` for inputs in [0, 1]); ``None``
            (default) shifts nothing. Needs ``in_chans == out_chans == len(rgb_mean)``.
        spatial_dims: 2 for images, 3 for volumes.

    Shapes: ``(B, in_chans, H, W)`` -> ``(B, out_chans, scale * H, scale * W)``; in 3D
    ``(B, in_chans, D, H, W)`` -> ``(B, out_chans, scale * D, scale * H, scale * W)``.
    """

    def __init__(
        self,
        in_chans: int = 3,
        out_chans: int = 3,
        chans: int = 64,
        num_groups: int = 10,
        num_blocks: int = 20,
        reduction: int = 16,
        scale: int = 4,
        res_scale: float = 1.0,
        bottleneck: bool = False,
        bottleneck_ratio: int = 4,
        inplace_activations: bool = False,
        checkpoint_groups: bool = False,
        frozen: Sequence[str] | None = None,
        rgb_mean: Sequence[float] | None = None,
        spatial_dims: int = 2,
    ):
        super().__init__()
        self.spatial_dims = dims = check_spatial_dims(spatial_dims, "RCAN")
        self.in_chans = in_chans
        self.out_chans = out_chans
        self.scale = scale
        self.checkpoint_groups = checkpoint_groups
        if rgb_mean is not None:
            if not len(rgb_mean) == in_chans == out_chans:
                raise UserError(
                    f"RCAN: rgb_mean has {len(rgb_mean)} entries but in_chans={in_chans}, "
                    f"out_chans={out_chans}; they must be equal"
                )
            mean_shape = (1, -1, *([1] * dims))
            self.register_buffer("rgb_mean", torch.tensor(rgb_mean).view(mean_shape))
        else:
            self.rgb_mean = None

        self.head = _conv(in_chans, chans, 3, dims)
        block_kwargs = dict(
            reduction=reduction,
            res_scale=res_scale,
            bottleneck=bottleneck,
            bottleneck_ratio=bottleneck_ratio,
            inplace=inplace_activations,
        )
        self.body = nn.Sequential(
            *(ResidualGroup(chans, num_blocks, dims, **block_kwargs) for _ in range(num_groups)),
            _conv(chans, chans, 3, dims),
        )
        self.tail = nn.Sequential(_upsampler(chans, scale, dims), _conv(chans, out_chans, 3, dims))
        if frozen:
            self.freeze(frozen)

    def freeze(self, module_names: Sequence[str]) -> None:
        """Stop training the named sub-networks (``"head"``, ``"body"``, ``"tail"``, ``"body.3"``,
        ...): their parameters get ``requires_grad=False``; the rest is left as it is."""
        for name in module_names:
            try:
                module = self.get_submodule(name)
            except AttributeError as error:
                raise UserError(f"RCAN.freeze: no sub-network named {name!r}") from error
            module.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x, self.in_chans)
        if self.rgb_mean is not None:
            x = x - self.rgb_mean
        features = self.head(x)
        use_checkpoint = self.checkpoint_groups and torch.is_grad_enabled()
        deep = features
        for layer in self.body:
            if use_checkpoint and isinstance(layer, ResidualGroup):
                deep = checkpoint(layer, deep, use_reentrant=False)
            else:
                deep = layer(deep)
        out = self.tail(deep + features)
        if self.rgb_mean is not None:
            out = out + self.rgb_mean
        return out

    @classmethod
    def example(cls) -> tuple[RCAN, torch.Tensor]:
        """2 groups x 2 blocks, 16 channels, x2 upsampling on a ``(2, 3, 9, 7)`` input."""
        model = cls(chans=16, num_groups=2, num_blocks=2, reduction=4, scale=2)
        return model, torch.randn(2, 3, 9, 7)

    @classmethod
    def example_3d(cls) -> tuple[RCAN, torch.Tensor]:
        """1 group x 1 block, 4 channels, x2 upsampling on a ``(2, 1, 5, 4, 3)`` volume."""
        model = cls(1, 1, chans=4, num_groups=1, num_blocks=1, reduction=2, scale=2, spatial_dims=3)
        return model, torch.randn(2, 1, 5, 4, 3)
