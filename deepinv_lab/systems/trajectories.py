"""Non-Cartesian k-space trajectories and their density compensation.

Layout and units (the convention of :class:`deepinv_lab.systems.nufft.NUFFT` and torchkbnufft):

* a trajectory is a real tensor ``(2, K)`` shared by a batch, or ``(B, 2, K)`` per sample;
* row 0 is ``ky`` (the frequency along the image height ``H``, dimension -2), row 1 is ``kx`` (along
  the width ``W``, dimension -1), so the rows follow the image axes ``(H, W)``;
* values are angular frequencies in radians per pixel, in ``[-pi, pi)``. The grid frequency
  ``2 pi k / N`` of a centered FFT of size ``N`` (index ``k + N // 2`` of ``fft2c``) is ``k``
  cycles per field of view; SigPy's coordinates are ``omega * N / (2 pi)`` with the axis last.

Density compensation weights ``w`` are real, ``(K,)`` or ``(B, K)``, scaled so that
``A^H W A ~ I`` where the trajectory covers k-space at or above the Nyquist rate: ``w_m`` is
``H * W`` times the k-space area (in radians^2) that sample ``m`` stands for, over ``(2 pi)^2``. A
fully sampled Cartesian grid therefore has ``w = 1``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from deepinv_lab.errors import UserError

#: Angle increment of golden-angle radial sampling with full spokes: ``pi (sqrt(5) - 1) / 2``
#: radians, 111.246... degrees (Winkelmann et al., IEEE TMI 2007).
RADIAL_GOLDEN_ANGLE = math.pi * (math.sqrt(5.0) - 1.0) / 2.0


def check_trajectory(trajectory: torch.Tensor) -> torch.Tensor:
    """Raise :class:`~deepinv_lab.errors.UserError` unless ``trajectory`` is a valid k-space
    trajectory; return it.

    Valid: a real floating tensor of shape ``(2, K)`` or ``(B, 2, K)`` with ``K >= 1``, rows
    ``(ky, kx)``, finite values in ``[-pi, pi)``. The bounds are exact (compared in float64), so
    ``-float32(pi)``, which lies below ``-pi``, is refused in any precision.
    """
    expected = "a real floating tensor of shape (2, K) or (B, 2, K) (rows ky, kx)"
    if not isinstance(trajectory, torch.Tensor):
        raise UserError(f"trajectory: expected {expected}, got {type(trajectory).__name__}")
    if not trajectory.is_floating_point() or trajectory.ndim not in (2, 3):
        raise UserError(
            f"trajectory: expected {expected}, got dtype {trajectory.dtype} with shape "
            f"{tuple(trajectory.shape)}"
        )
    if trajectory.shape[-2] != 2 or trajectory.shape[-1] == 0:
        raise UserError(f"trajectory: expected {expected}, got shape {tuple(trajectory.shape)}")
    if not bool(torch.isfinite(trajectory).all()):
        raise UserError("trajectory: expected finite values in [-pi, pi), got NaN or inf")
    exact = trajectory.detach().double()
    if not (bool((exact >= -math.pi).all()) and bool((exact < math.pi).all())):
        low, high = float(exact.min()), float(exact.max())
        raise UserError(
            "trajectory: expected values in [-pi, pi) radians per pixel, got values in "
            f"[{low:.6g}, {high:.6g}]; scale SigPy-style coordinates by 2 pi / N"
        )
    return trajectory


def _wrap(trajectory: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Map float64 frequencies onto ``[-pi, pi)`` exactly, after rounding to ``dtype``.

    The DFT is 2 pi-periodic in the frequency, so wrapping changes no measurement. Rounding to
    float32 can land on ``float32(pi)`` or ``-float32(pi)``, both outside ``[-pi, pi)``
    (float32's pi is larger than pi); those become the smallest representable value above ``-pi``.
    """
    wrapped = (torch.remainder(trajectory + math.pi, 2 * math.pi) - math.pi).to(dtype)
    lowest = torch.tensor(-math.pi, dtype=torch.float64).to(dtype)
    if float(lowest) < -math.pi:
        lowest = torch.nextafter(lowest, torch.zeros_like(lowest))
    outside = (wrapped.double() < -math.pi) | (wrapped.double() >= math.pi)
    return torch.where(outside, lowest, wrapped)


def radial_angles(num_spokes: int, golden_angle: bool = True, first_spoke: int = 0) -> torch.Tensor:
    """Spoke angles in ``[0, pi)`` (float64): ``s * 111.246...`` degrees modulo 180 for golden-angle
    ordering, ``s * 180 / num_spokes`` degrees otherwise, for ``s = first_spoke, ...``."""
    if num_spokes < 1:
        raise UserError(f"radial_angles: expected num_spokes >= 1, got {num_spokes}")
    index = torch.arange(first_spoke, first_spoke + num_spokes, dtype=torch.float64)
    step = RADIAL_GOLDEN_ANGLE if golden_angle else math.pi / num_spokes
    return torch.remainder(index * step, math.pi)


def _readout_radii(num_readout: int) -> torch.Tensor:
    """``num_readout`` radii ``pi (2 j - R) / R``, ``j = 0 .. R - 1``: from ``-pi`` (inclusive) to
    ``pi`` (exclusive) in steps of ``2 pi / R``, with one sample at the centre for even ``R``."""
    index = torch.arange(num_readout, dtype=torch.float64)
    return math.pi * (2 * index - num_readout) / num_readout


def radial_trajectory(
    num_spokes: int,
    num_readout: int,
    golden_angle: bool = True,
    first_spoke: int = 0,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Radial trajectory of full spokes through the centre, ``(2, num_spokes * num_readout)``.

    Spoke ``s`` at angle ``theta_s`` (see :func:`radial_angles`) has samples
    ``(ky, kx) = r_j (sin theta_s, cos theta_s)`` for the radii ``r_j = pi (2 j - R) / R``; the
    samples are stored spoke after spoke (index ``s * num_readout + j``). ``num_readout = 2 N``
    samples a spoke at twice the Nyquist rate of an ``N x N`` image; ``pi N / 2`` spokes sample
    its periphery at the Nyquist rate. ``first_spoke`` continues a golden-angle sequence (e.g. a
    different trajectory per sample or frame).
    """
    if num_readout < 1:
        raise UserError(f"radial_trajectory: expected num_readout >= 1, got {num_readout}")
    angles = radial_angles(num_spokes, golden_angle, first_spoke)
    radii = _readout_radii(num_readout)
    ky = radii[None, :] * torch.sin(angles)[:, None]
    kx = radii[None, :] * torch.cos(angles)[:, None]
    return _wrap(torch.stack([ky.flatten(), kx.flatten()]), dtype)


def spiral_trajectory(
    num_interleaves: int,
    num_samples: int,
    image_size: int = 64,
    num_turns: float | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Archimedean spiral, ``(2, num_interleaves * num_samples)``, interleave after interleave.

    Interleave ``m`` samples ``k(t) = pi t exp(i (2 pi T t + 2 pi m / M))`` at
    ``t = j / num_samples``, with ``ky = Im k`` and ``kx = Re k``: the radius grows linearly
    from 0 to just below ``pi`` over ``T`` turns. The default
    ``T = image_size / (2 num_interleaves)`` spaces neighbouring arms by ``2 pi / image_size``,
    the Nyquist rate of an ``image_size``-pixel field of view.
    """
    if num_interleaves < 1 or num_samples < 1:
        raise UserError(
            "spiral_trajectory: expected num_interleaves >= 1 and num_samples >= 1, got "
            f"{num_interleaves} and {num_samples}"
        )
    turns = image_size / (2 * num_interleaves) if num_turns is None else num_turns
    t = torch.arange(num_samples, dtype=torch.float64) / num_samples
    rotation = 2 * math.pi * torch.arange(num_interleaves, dtype=torch.float64) / num_interleaves
    phase = 2 * math.pi * turns * t[None, :] + rotation[:, None]
    radius = math.pi * t[None, :]
    ky = radius * torch.sin(phase)
    kx = radius * torch.cos(phase)
    return _wrap(torch.stack([ky.flatten(), kx.flatten()]), dtype)


def radial_density(
    num_spokes: int,
    num_readout: int,
    image_size: Sequence[int],
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Analytic ramp density compensation for :func:`radial_trajectory`, ``(K,)``.

    A sample at radius ``|r|`` stands for a ring sector of area ``(pi / S) |r| dr`` with
    ``dr = 2 pi / R``, so ``w = H W |r| / (2 S R)``; the centre sample, shared by all ``S`` spokes,
    gets the disc of radius ``dr / 2`` split ``S`` ways, i.e. ``|r|`` replaced by ``dr / 4``.
    Exact for uniformly spaced spokes; golden-angle spokes approach it as their number grows.
    """
    if num_spokes < 1 or num_readout < 1:
        raise UserError(
            "radial_density: expected num_spokes >= 1 and num_readout >= 1, got "
            f"{num_spokes} and {num_readout}"
        )
    height, width = check_image_size(image_size, "radial_density")
    radii = _readout_radii(num_readout).abs()
    radii = torch.where(radii == 0, torch.full_like(radii, math.pi / (2 * num_readout)), radii)
    weights = height * width * radii / (2 * num_spokes * num_readout)
    return weights.repeat(num_spokes).to(dtype)


def pipe_density(
    trajectory: torch.Tensor,
    image_size: Sequence[int],
    iterations: int = 10,
    oversampling: float = 2.0,
    numpoints: int = 6,
) -> torch.Tensor:
    """Density compensation by the fixed-point iteration of Pipe and Menon (MRM 1999),
    ``w <- w / |G G^H w|`` with ``G^H`` the Kaiser-Bessel gridding of torchkbnufft.

    Returns real weights ``(K,)`` for a ``(2, K)`` trajectory, ``(B, K)`` for ``(B, 2, K)``, in the
    trajectory's dtype, scaled like :func:`radial_density` (module docstring): the raw fixed point
    is divided by the one of a fully sampled ``H x W`` Cartesian grid, whose correct weight is 1.
    """
    from deepinv_lab.systems.nufft.torchkbnufft_backend import import_torchkbnufft

    tkbn = import_torchkbnufft()
    check_trajectory(trajectory)
    height, width = check_image_size(image_size, "pipe_density")
    if iterations < 1:
        raise UserError(f"pipe_density: expected iterations >= 1, got {iterations}")
    options = dict(
        im_size=(height, width),
        grid_size=oversampled_grid_size((height, width), oversampling, "pipe_density"),
        numpoints=numpoints,
    )
    with torch.no_grad():
        batched = trajectory.ndim == 3
        per_sample = [trajectory] if not batched else list(trajectory)
        raw = [
            tkbn.calc_density_compensation_function(omega, num_iterations=iterations, **options)
            for omega in per_sample
        ]
        # One iteration is already the fixed point of a uniform grid.
        grid = cartesian_trajectory((height, width), dtype=trajectory.dtype).to(trajectory.device)
        reference = tkbn.calc_density_compensation_function(grid, num_iterations=1, **options)
        scale = reference.real.mean()
        weights = torch.stack([w.real.flatten() / scale for w in raw])
    return weights if batched else weights[0]


def cartesian_trajectory(
    image_size: Sequence[int], dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """The full Cartesian grid ``2 pi (k_y / H, k_x / W)``, ``k = -N // 2 .. (N - 1) // 2``, as a
    ``(2, H * W)`` trajectory in row-major (``ky`` slowest) order: the NUFFT on it is ``fft2c``."""
    height, width = check_image_size(image_size, "cartesian_trajectory")
    ky = (torch.arange(height, dtype=torch.float64) - height // 2) * (2 * math.pi / height)
    kx = (torch.arange(width, dtype=torch.float64) - width // 2) * (2 * math.pi / width)
    grid_y, grid_x = torch.meshgrid(ky, kx, indexing="ij")
    return _wrap(torch.stack([grid_y.flatten(), grid_x.flatten()]), dtype)


def check_image_size(image_size: Sequence[int], where: str = "image_size") -> tuple[int, int]:
    """Raise :class:`~deepinv_lab.errors.UserError` unless ``image_size`` is ``(H, W)`` of
    positive integers; return it as a tuple of ints. ``where`` names the caller in the message."""
    size = tuple(int(n) for n in image_size)
    if len(size) != 2 or min(size) < 1:
        raise UserError(f"{where}: expected image_size (H, W) of positive ints, got {image_size}")
    return size


def oversampled_grid_size(
    image_size: Sequence[int], oversampling: float, where: str = "oversampling"
) -> tuple[int, int]:
    """The NUFFT's oversampled Cartesian grid for an ``(H, W)`` image:
    ``(ceil(oversampling H), ceil(oversampling W))``. Raise
    :class:`~deepinv_lab.errors.UserError` when ``oversampling < 1``; ``where`` names the caller
    in the message."""
    if oversampling < 1:
        raise UserError(f"{where}: expected oversampling >= 1, got {oversampling}")
    return tuple(math.ceil(oversampling * n) for n in image_size)
