"""Layers chosen by the number of spatial dimensions, so one model definition serves images and
volumes.

A Model that takes ``spatial_dims`` (2 for images ``(B, C, H, W)``, 3 for volumes
``(B, C, D, H, W)``) builds its layers through these helpers: ``conv(spatial_dims)`` is
``nn.Conv2d`` or ``nn.Conv3d``, and so on. With ``spatial_dims=2`` they return exactly the
PyTorch 2D classes, so 2D models keep their modules and state-dict keys.

PyTorch has no 3D pixel shuffle; :func:`pixel_shuffle_nd` and :func:`pixel_unshuffle_nd` shuffle
any number of spatial dimensions, in the channel order of :func:`torch.nn.functional.pixel_shuffle`
for two.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from deepinv_lab.errors import UserError

#: The numbers of spatial dimensions the dimension-generic models support.
SPATIAL_DIMS = (2, 3)


def check_spatial_dims(spatial_dims: int, owner: str) -> int:
    """Return ``spatial_dims`` unless it is not 2 or 3: then raise a
    :class:`~deepinv_lab.errors.UserError` naming ``owner``."""
    if isinstance(spatial_dims, bool) or spatial_dims not in SPATIAL_DIMS:
        raise UserError(
            f"{owner}: spatial_dims must be 2 (images) or 3 (volumes), got {spatial_dims!r}"
        )
    return spatial_dims


def spatial_names(spatial_dims: int) -> str:
    """``"H, W"`` or ``"D, H, W"``: the names of the spatial dimensions, for shape messages."""
    return ", ".join(("D", "H", "W")[-spatial_dims:])


def conv(spatial_dims: int) -> type[nn.Conv2d] | type[nn.Conv3d]:
    """``nn.Conv2d`` or ``nn.Conv3d``."""
    return (nn.Conv2d, nn.Conv3d)[spatial_dims - 2]


def conv_transpose(spatial_dims: int) -> type[nn.ConvTranspose2d] | type[nn.ConvTranspose3d]:
    """``nn.ConvTranspose2d`` or ``nn.ConvTranspose3d``."""
    return (nn.ConvTranspose2d, nn.ConvTranspose3d)[spatial_dims - 2]


def batch_norm(spatial_dims: int) -> type[nn.BatchNorm2d] | type[nn.BatchNorm3d]:
    """``nn.BatchNorm2d`` or ``nn.BatchNorm3d``."""
    return (nn.BatchNorm2d, nn.BatchNorm3d)[spatial_dims - 2]


def instance_norm(spatial_dims: int) -> type[nn.InstanceNorm2d] | type[nn.InstanceNorm3d]:
    """``nn.InstanceNorm2d`` or ``nn.InstanceNorm3d``."""
    return (nn.InstanceNorm2d, nn.InstanceNorm3d)[spatial_dims - 2]


def dropout(spatial_dims: int) -> type[nn.Dropout2d] | type[nn.Dropout3d]:
    """``nn.Dropout2d`` or ``nn.Dropout3d`` (whole feature maps dropped)."""
    return (nn.Dropout2d, nn.Dropout3d)[spatial_dims - 2]


def adaptive_avg_pool(
    spatial_dims: int,
) -> type[nn.AdaptiveAvgPool2d] | type[nn.AdaptiveAvgPool3d]:
    """``nn.AdaptiveAvgPool2d`` or ``nn.AdaptiveAvgPool3d``."""
    return (nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)[spatial_dims - 2]


def avg_pool(spatial_dims: int) -> Callable[..., torch.Tensor]:
    """The functional ``F.avg_pool2d`` or ``F.avg_pool3d``."""
    return (F.avg_pool2d, F.avg_pool3d)[spatial_dims - 2]


def _check_factor(x: torch.Tensor, factor: int, spatial_dims: int, owner: str) -> None:
    if factor < 1:
        raise ValueError(f"{owner}: factor must be at least 1, got {factor}")
    if x.ndim < 2 + spatial_dims:
        raise ValueError(
            f"{owner}: expected (B, C, {spatial_names(spatial_dims)})-like input with "
            f"{spatial_dims} spatial dims, got shape {tuple(x.shape)}"
        )


def pixel_shuffle_nd(x: torch.Tensor, factor: int, spatial_dims: int | None = None) -> torch.Tensor:
    """Sub-pixel rearrangement over ``spatial_dims`` (default: all dims after the channels).

    ``(B, C r^d, S_1, ..., S_d)`` -> ``(B, C, r S_1, ..., r S_d)`` with ``r = factor``: channel
    ``c r^d + (i_1 r^{d-1} + ... + i_d)`` goes to output position ``(r s_1 + i_1, ...)``, the
    layout of :func:`torch.nn.functional.pixel_shuffle` for ``d = 2``.
    """
    d = x.ndim - 2 if spatial_dims is None else spatial_dims
    _check_factor(x, factor, d, "pixel_shuffle_nd")
    *lead, chans = x.shape[: x.ndim - d]
    sizes = x.shape[x.ndim - d :]
    if chans % factor**d:
        raise ValueError(
            f"pixel_shuffle_nd: {chans} channels are not divisible by factor**{d} = {factor**d}"
        )
    out_chans = chans // factor**d
    n = len(lead)
    x = x.reshape(*lead, out_chans, *([factor] * d), *sizes)
    # (..., C, r_1..r_d, S_1..S_d) -> (..., C, S_1, r_1, ..., S_d, r_d)
    factor_axes = range(n + 1, n + 1 + d)
    size_axes = range(n + 1 + d, n + 1 + 2 * d)
    order = [*range(n + 1)] + [a for pair in zip(size_axes, factor_axes, strict=True) for a in pair]
    x = x.permute(order)
    return x.reshape(*lead, out_chans, *(s * factor for s in sizes))


def pixel_unshuffle_nd(
    x: torch.Tensor, factor: int, spatial_dims: int | None = None
) -> torch.Tensor:
    """Inverse of :func:`pixel_shuffle_nd`: ``(B, C, r S_1, ..., r S_d)`` ->
    ``(B, C r^d, S_1, ..., S_d)``; each spatial size must be a multiple of ``factor``."""
    d = x.ndim - 2 if spatial_dims is None else spatial_dims
    _check_factor(x, factor, d, "pixel_unshuffle_nd")
    *lead, chans = x.shape[: x.ndim - d]
    sizes = x.shape[x.ndim - d :]
    if any(s % factor for s in sizes):
        raise ValueError(
            f"pixel_unshuffle_nd: spatial sizes {tuple(sizes)} are not multiples of {factor}"
        )
    n = len(lead)
    split = [v for s in sizes for v in (s // factor, factor)]
    x = x.reshape(*lead, chans, *split)
    # (..., C, S_1, r_1, ..., S_d, r_d) -> (..., C, r_1..r_d, S_1..S_d)
    size_axes = [n + 1 + 2 * i for i in range(d)]
    factor_axes = [n + 2 + 2 * i for i in range(d)]
    x = x.permute([*range(n + 1), *factor_axes, *size_axes])
    return x.reshape(*lead, chans * factor**d, *(s // factor for s in sizes))


class PixelShuffleNd(nn.Module):
    """:func:`pixel_shuffle_nd` as a module, for ``spatial_dims`` spatial dimensions.

    Shapes: ``(B, C r^d, S_1, ..., S_d)`` -> ``(B, C, r S_1, ..., r S_d)``.
    """

    def __init__(self, upscale_factor: int, spatial_dims: int = 3):
        super().__init__()
        self.upscale_factor = upscale_factor
        self.spatial_dims = spatial_dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pixel_shuffle_nd(x, self.upscale_factor, self.spatial_dims)

    def extra_repr(self) -> str:
        return f"upscale_factor={self.upscale_factor}, spatial_dims={self.spatial_dims}"


class PixelUnshuffleNd(nn.Module):
    """:func:`pixel_unshuffle_nd` as a module, for ``spatial_dims`` spatial dimensions.

    Shapes: ``(B, C, r S_1, ..., r S_d)`` -> ``(B, C r^d, S_1, ..., S_d)``.
    """

    def __init__(self, downscale_factor: int, spatial_dims: int = 3):
        super().__init__()
        self.downscale_factor = downscale_factor
        self.spatial_dims = spatial_dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pixel_unshuffle_nd(x, self.downscale_factor, self.spatial_dims)

    def extra_repr(self) -> str:
        return f"downscale_factor={self.downscale_factor}, spatial_dims={self.spatial_dims}"


#: Modules that move channels into pixels or back (pruning must not cut channels across them).
PIXEL_SHUFFLES = (nn.PixelShuffle, nn.PixelUnshuffle, PixelShuffleNd, PixelUnshuffleNd)


def pixel_shuffle(spatial_dims: int, upscale_factor: int) -> nn.Module:
    """A pixel-shuffle module: ``nn.PixelShuffle`` in 2D, :class:`PixelShuffleNd` in 3D.
    Its input needs ``upscale_factor ** spatial_dims`` times the output's channels."""
    if spatial_dims == 2:
        return nn.PixelShuffle(upscale_factor)
    return PixelShuffleNd(upscale_factor, spatial_dims)


def pixel_unshuffle(spatial_dims: int, downscale_factor: int) -> nn.Module:
    """A pixel-unshuffle module: ``nn.PixelUnshuffle`` in 2D, :class:`PixelUnshuffleNd` in 3D."""
    if spatial_dims == 2:
        return nn.PixelUnshuffle(downscale_factor)
    return PixelUnshuffleNd(downscale_factor, spatial_dims)
