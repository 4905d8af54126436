"""Simulated coil sensitivity maps (birdcage); maps estimated from k-space are in
:mod:`deepinv_lab.systems.espirit`."""

from __future__ import annotations

import math

import torch

from deepinv_lab.errors import UserError


def birdcage_maps(
    num_coils: int,
    shape: tuple[int, int],
    radius: float = 1.5,
    rotation: float = 0.0,
    dtype: torch.dtype = torch.complex64,
) -> torch.Tensor:
    """Smooth birdcage-coil sensitivities, normalised to unit root-sum-of-squares at every pixel.

    Coil ``c`` sits at angle ``theta_c = rotation + 2 pi c / num_coils`` on a circle of ``radius``
    (in units of the half field of view). Its sensitivity at pixel ``r`` falls off as
    ``1 / |r - r_c|`` with phase ``angle(r - r_c) - theta_c``, the model of SigPy's
    ``birdcage_maps``. Normalising by the RSS makes ``S^H S = I``, so that ``rss(S x) = |x|``.

    Returns:
        complex tensor ``(num_coils, H, W)``.
    """
    if num_coils < 1:
        raise UserError(f"birdcage_maps: num_coils must be >= 1, got {num_coils}")
    height, width = shape
    real = torch.empty((), dtype=dtype).real.dtype
    y = (torch.arange(height, dtype=real) - height / 2) / (height / 2)
    x = (torch.arange(width, dtype=real) - width / 2) / (width / 2)
    yy, xx = torch.meshgrid(y, x, indexing="ij")
    theta = rotation + 2 * math.pi * torch.arange(num_coils, dtype=real) / num_coils
    dx = xx - radius * torch.cos(theta)[:, None, None]
    dy = yy - radius * torch.sin(theta)[:, None, None]
    distance = torch.sqrt(dx**2 + dy**2)
    phase = torch.atan2(dx, -dy) - theta[:, None, None]
    maps = torch.polar(1.0 / distance, phase)
    return (maps / torch.sqrt((maps.abs() ** 2).sum(0, keepdim=True))).to(dtype)
