"""Random masks with a polynomial variable density, and :class:`VariableDensityMaskFunc`, their
fastMRI-style mask function."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real

import numpy as np
import torch

from deepinv_lab.errors import UserError
from deepinv_lab.systems.sampling.masks2d import (
    MaskFunc2D,
    calibration_slices,
    check_2d_mask_arguments,
)


def variable_density_mask(
    shape: Sequence[int],
    acceleration: float,
    calib: Sequence[int] = (24, 24),
    power: float = 2.0,
    seed: int = 0,
) -> torch.Tensor:
    """Random ``(H, W)`` mask with the polynomial density ``p(r) ∝ (1 - r)^power``.

    ``r`` is the k-space radius with both axes scaled to ``[-1, 1]`` and then divided by its
    maximum, so ``r = 1`` at the corners (the density of Lustig et al.'s ``genPDF``, MRM 2007).
    The calibration block is always sampled; the other ``round(H W / acceleration) - rows cols``
    points are drawn without replacement by sequential Poisson sampling (Ohlsson, 1998): draw
    ``u ~ U(0, 1)`` per point and keep the points with the smallest ``u / p``. Inclusion
    probabilities follow ``p`` closely and the number of samples is exact, so the achieved
    acceleration is ``acceleration`` up to rounding to a whole number of points.

    Args:
        shape: k-space size ``(H, W)``.
        acceleration: target ``H W / #samples``, > 1.
        calib: fully sampled block ``(rows, cols)`` around DC
            (:func:`~deepinv_lab.systems.sampling.masks2d.calibration_slices`).
        power: decay exponent; larger concentrates samples near the center (0: uniform).
        seed: integer in ``[0, 2**32)`` seeding a ``numpy.random.RandomState``.

    Returns:
        float32 0/1 tensor ``(H, W)``.
    """
    (height, width), (rows, cols) = check_2d_mask_arguments(
        "variable_density_mask", shape, acceleration, calib, seed
    )
    _check_power("variable_density_mask", power)
    ky = (np.arange(height) - height // 2) / (height / 2)
    kx = (np.arange(width) - width // 2) / (width / 2)
    radius = np.hypot(ky[:, None], kx[None, :])
    density = (1 - radius / radius.max()) ** power
    calibration = np.zeros((height, width), dtype=bool)
    calibration[calibration_slices((height, width), (rows, cols))] = True

    num_samples = round(height * width / acceleration)
    uniform = np.random.RandomState(seed).uniform(size=(height, width))
    with np.errstate(divide="ignore", invalid="ignore"):  # zero density: never chosen first
        keys = np.where(density > 0, uniform / density, np.inf)
    keys[calibration] = -np.inf
    chosen = np.argsort(keys, axis=None, kind="stable")[:num_samples]
    mask = np.zeros(height * width, dtype=np.float32)
    mask[chosen] = 1
    return torch.from_numpy(mask.reshape(height, width))


def _check_power(name: str, power: float) -> None:
    if isinstance(power, bool) or not isinstance(power, Real) or power < 0:
        raise UserError(f"{name}: power must be a number >= 0, got {power!r}")


class VariableDensityMaskFunc(MaskFunc2D):
    """:func:`variable_density_mask` as a fastMRI-style mask function (call semantics as
    :class:`~deepinv_lab.systems.sampling.poisson.PoissonDiscMaskFunc`).

    Args:
        accelerations: candidate accelerations (> 1), one drawn uniformly per call.
        calib: fully sampled block ``(rows, cols)``.
        seed: seed of the function's generator.
        power: density exponent of :func:`variable_density_mask`.
    """

    def __init__(
        self,
        accelerations: Sequence[float],
        calib: Sequence[int] = (24, 24),
        seed: int | None = None,
        power: float = 2.0,
    ):
        super().__init__(accelerations, calib, seed)
        _check_power(type(self).__name__, power)
        self.power = power

    def sample(self, shape: tuple[int, int], acceleration: float, seed: int) -> torch.Tensor:
        return variable_density_mask(shape, acceleration, self.calib, self.power, seed)
