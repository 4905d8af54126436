"""Simulated coil sensitivity maps (birdcage; a cylindrical array for volumes); maps estimated
from k-space are in :mod:`deepinv_lab.systems.espirit`."""

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


def birdcage_maps_3d(
    num_coils: int,
    shape: tuple[int, int, int],
    radius: float = 1.5,
    rings: int = 1,
    rotation: float = 0.0,
    dtype: torch.dtype = torch.complex64,
) -> torch.Tensor:
    """Smooth sensitivities of a cylindrical coil array around a volume ``(X, Y, Z)``,
    normalised to unit root-sum-of-squares at every voxel.

    The cylinder's axis is the first axis ``X`` (the readout of 3D Cartesian MRI). The coils sit
    on ``rings`` rings of ``num_coils / rings`` coils each, at axial positions evenly spread over
    ``[-0.5, 0.5]`` (one ring: at 0) in units of the half field of view; coil ``a`` of a ring is
    at angle ``theta = rotation + 2 pi a / per_ring`` (odd rings turned by half a step) on a
    circle of ``radius`` in the ``(Y, Z)`` plane. As in :func:`birdcage_maps`, a coil's
    sensitivity falls off as ``1 / |r - r_c|`` (3D distance) with phase
    ``angle(r - r_c) - theta`` in the ``(Y, Z)`` plane, and the RSS normalisation makes
    ``S^H S = I``.

    Returns:
        complex tensor ``(num_coils, X, Y, Z)``.
    """
    if isinstance(rings, bool) or not isinstance(rings, int) or rings < 1:
        raise UserError(f"birdcage_maps_3d: rings must be an integer >= 1, got {rings!r}")
    if num_coils < 1 or num_coils % rings:
        raise UserError(
            f"birdcage_maps_3d: num_coils must be a positive multiple of rings={rings}, got "
            f"{num_coils}"
        )
    if len(shape) != 3:
        raise UserError(f"birdcage_maps_3d: shape must be (X, Y, Z), got {tuple(shape)}")
    real = torch.empty((), dtype=dtype).real.dtype
    axes = [(torch.arange(n, dtype=real) - n / 2) / (n / 2) for n in shape]
    xx, yy, zz = torch.meshgrid(*axes, indexing="ij")
    per_ring = num_coils // rings
    ring = torch.arange(num_coils) // per_ring
    steps = (torch.arange(num_coils) % per_ring) + 0.5 * (ring % 2)
    theta = (rotation + 2 * math.pi * steps / per_ring).to(real)
    axial = (
        torch.linspace(-0.5, 0.5, rings, dtype=real) if rings > 1 else torch.zeros(1, dtype=real)
    )
    grid = (slice(None), None, None, None)
    dx = xx - axial[ring][grid]
    dy = yy - radius * torch.cos(theta)[grid]
    dz = zz - radius * torch.sin(theta)[grid]
    distance = torch.sqrt(dx**2 + dy**2 + dz**2)
    phase = torch.atan2(dz, -dy) - theta[grid]
    maps = torch.polar(1.0 / distance, phase)
    return (maps / torch.sqrt((maps.abs() ** 2).sum(0, keepdim=True))).to(dtype)
