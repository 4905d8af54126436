"""Bicubic interpolation with MATLAB ``imresize``'s conventions (the super-resolution baseline).

Upsampling by an integer ``scale``: output pixel ``i`` sits at input coordinate
``u = (i + 0.5) / scale - 0.5`` (pixel centres aligned, as ``imresize``, PIL and
``torch.nn.functional.interpolate(..., align_corners=False)``); its value is
``sum_j cubic(u - j) x_j`` over the four nearest input pixels, with Keys' kernel at ``a = -0.5``
(``imresize`` and PIL; ``torch``'s bicubic uses ``a = -0.75``). Indices beyond a border are
mirrored (half-sample symmetric, ``x_{-1} = x_0``), as ``imresize`` does. Volumes are upsampled
separably, the same 1-D interpolation along each of the three spatial axes (tricubic).
"""

from __future__ import annotations

import functools

import torch


def keys_cubic(t: torch.Tensor, a: float = -0.5) -> torch.Tensor:
    """Keys' cubic convolution kernel (Keys 1981), supported on ``|t| < 2``; ``a = -0.5`` is the
    choice of MATLAB's ``imresize`` and PIL."""
    t = t.abs()
    inner = (a + 2) * t**3 - (a + 3) * t**2 + 1
    outer = a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a
    return torch.where(t <= 1, inner, torch.where(t < 2, outer, torch.zeros_like(t)))


@functools.lru_cache(maxsize=64)
def _upsampling_matrix(length: int, scale: int) -> torch.Tensor:
    """The ``(scale * length, length)`` float64 interpolation matrix along one axis."""
    out = torch.arange(scale * length, dtype=torch.float64)
    position = (out + 0.5) / scale - 0.5
    taps = torch.floor(position)[:, None] + torch.arange(-1, 3, dtype=torch.float64)
    weights = keys_cubic(position[:, None] - taps)
    weights = weights / weights.sum(dim=1, keepdim=True)
    index = taps.long() % (2 * length)
    index = torch.where(index >= length, 2 * length - 1 - index, index)
    matrix = torch.zeros(scale * length, length, dtype=torch.float64)
    matrix.scatter_add_(1, index, weights)
    return matrix


def upsample_bicubic(x: torch.Tensor, scale: int, spatial_dims: int = 2) -> torch.Tensor:
    """Bicubic upsampling of ``(..., H, W)`` images by an integer ``scale`` -> ``(..., scale H,
    scale W)``, MATLAB ``imresize(x, scale, 'bicubic')`` conventions (module docstring); with
    ``spatial_dims=3``, tricubic upsampling of volumes ``(..., D, H, W)`` -> ``(..., scale D,
    scale H, scale W)``, separable.

    Real or complex input; differentiable (one matrix product per spatial axis).
    """
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"upsample_bicubic: scale must be an integer >= 1, got {scale!r}")
    if spatial_dims not in (2, 3):
        raise ValueError(f"upsample_bicubic: spatial_dims must be 2 or 3, got {spatial_dims!r}")
    if x.ndim < spatial_dims:
        axes = "(..., H, W) images" if spatial_dims == 2 else "(..., D, H, W) volumes"
        raise ValueError(f"upsample_bicubic expects {axes}, got {tuple(x.shape)}")
    if scale == 1:
        return x
    real_dtype = x.real.dtype if x.is_complex() else x.dtype
    dtype = x.dtype if x.is_complex() else real_dtype

    def matrix(length: int) -> torch.Tensor:
        weights = _upsampling_matrix(length, scale).to(device=x.device, dtype=real_dtype)
        return weights.to(dtype)

    rows, cols = matrix(x.shape[-2]), matrix(x.shape[-1])
    out = rows @ x @ cols.T
    if spatial_dims == 3:
        depth = matrix(x.shape[-3])
        out = (depth @ out.flatten(-2)).unflatten(-1, out.shape[-2:])
    return out


def clear_resize_cache() -> None:
    """Empty the per-size cache of the bicubic upsampling matrices (a ``torch.export`` capture
    leaves fake tensors in it)."""
    _upsampling_matrix.cache_clear()
