"""Bicubic interpolation with MATLAB ``imresize``'s conventions (the super-resolution baseline).

Upsampling by an integer ``scale``: output pixel ``i`` sits at input coordinate
``u = (i + 0.5) / scale - 0.5`` (pixel centres aligned, as ``imresize``, PIL and
``torch.nn.functional.interpolate(..., align_corners=False)``); its value is
``sum_j cubic(u - j) x_j`` over the four nearest input pixels, with Keys' kernel at ``a = -0.5``
(``imresize`` and PIL; ``torch``'s bicubic uses ``a = -0.75``). Indices beyond a border are
mirrored (half-sample symmetric, ``x_{-1} = x_0``), as ``imresize`` does.
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


def upsample_bicubic(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic upsampling of ``(..., H, W)`` images by an integer ``scale`` -> ``(..., scale H,
    scale W)``, MATLAB ``imresize(x, scale, 'bicubic')`` conventions (module docstring).

    Real or complex input; differentiable (it is two matrix products).
    """
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"upsample_bicubic: scale must be an integer >= 1, got {scale!r}")
    if x.ndim < 2:
        raise ValueError(f"upsample_bicubic expects (..., H, W) images, got {tuple(x.shape)}")
    if scale == 1:
        return x
    real_dtype = x.real.dtype if x.is_complex() else x.dtype
    rows = _upsampling_matrix(x.shape[-2], scale).to(device=x.device, dtype=real_dtype)
    cols = _upsampling_matrix(x.shape[-1], scale).to(device=x.device, dtype=real_dtype)
    if x.is_complex():
        rows, cols = rows.to(x.dtype), cols.to(x.dtype)
    return rows @ x @ cols.T
