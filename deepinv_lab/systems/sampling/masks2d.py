"""What the 2D masks share: their calibration block, their argument checks and
:class:`MaskFunc2D`, the fastMRI-style mask function around a 2D sampler.

For single-slice compressed sensing and the phase-encode plane of 3D Cartesian imaging, a mask
selects points of the ``(H, W)`` k-space grid, not whole columns. The calibration (ACS) block of
``calib = (rows, cols)`` points is fully sampled and starts at row ``(H - rows) // 2`` and column
``(W - cols) // 2`` (:func:`calibration_slices`): the project's center-crop convention and
SigPy's, so it contains the DC location ``(H // 2, W // 2)``. (fastMRI's column masks put an odd
block one column further right for even ``W``.)
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real

import numpy as np
import torch

from deepinv_lab.errors import UserError
from deepinv_lab.systems.sampling.base import (
    SampledMask,
    Seed,
    check_kspace_shape,
    temporary_seed,
)


def calibration_slices(shape: Sequence[int], calib: Sequence[int]) -> tuple[slice, slice]:
    """Row and column slices of the fully sampled ``calib = (rows, cols)`` block of ``(H, W)``."""
    return tuple(  # type: ignore[return-value]
        slice((size - width) // 2, (size - width) // 2 + width)
        for size, width in zip(shape, calib, strict=True)
    )


def check_2d_mask_arguments(
    owner: str, shape: Sequence[int], acceleration: float, calib: Sequence[int], seed: int
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Raise :class:`~deepinv_lab.errors.UserError` unless the arguments every 2D sampler takes
    are valid: ``shape = (H, W)`` with ``H, W >= 2``, ``calib = (rows, cols)`` inside it,
    ``acceleration > 1`` leaving room outside the calibration block, and an integer ``seed`` in
    ``[0, 2**32)``. Returns ``shape`` and ``calib`` as Python ints; ``owner`` names the caller in
    the message."""
    if len(shape) != 2 or not all(isinstance(s, Integral) and s >= 2 for s in shape):
        raise UserError(f"{owner}: shape must be (H, W) with H, W >= 2, got {tuple(shape)}")
    if len(calib) != 2 or not all(
        isinstance(c, Integral) and 0 <= c < s for c, s in zip(calib, shape, strict=True)
    ):
        raise UserError(
            f"{owner}: calib must be (rows, cols) with 0 <= rows < H and 0 <= cols < W for shape "
            f"{tuple(shape)}, got {tuple(calib)}"
        )
    if not isinstance(acceleration, Real) or not acceleration > 1:
        raise UserError(f"{owner}: acceleration must be a number > 1, got {acceleration!r}")
    if not isinstance(seed, Integral) or not 0 <= seed < 2**32:
        raise UserError(f"{owner}: seed must be an integer in [0, 2**32), got {seed!r}")
    height, width = (int(s) for s in shape)
    rows, cols = (int(c) for c in calib)
    target = height * width / acceleration
    if rows * cols >= target:
        raise UserError(
            f"{owner}: the calibration block {rows} x {cols} = {rows * cols} points is not "
            f"below the {target:.0f} points of acceleration {acceleration} for shape "
            f"{(height, width)}; use a smaller calib or a lower acceleration"
        )
    return (height, width), (rows, cols)


class MaskFunc2D:
    """Base class of the 2D mask functions: each call draws an acceleration and a sample seed from
    the function's own generator and passes them to :meth:`sample`, which subclasses implement.

    Args:
        accelerations: candidate accelerations (> 1), one drawn uniformly per call.
        calib: fully sampled block ``(rows, cols)`` (:func:`calibration_slices`).
        seed: seed of the function's ``numpy.random.RandomState``.
    """

    def __init__(
        self, accelerations: Sequence[float], calib: Sequence[int], seed: int | None = None
    ):
        accelerations = list(accelerations)
        if not accelerations or not all(isinstance(a, Real) and a > 1 for a in accelerations):
            raise UserError(
                f"{type(self).__name__}: accelerations must be a non-empty list of numbers > 1, "
                f"got {accelerations}"
            )
        calib = tuple(calib)
        if len(calib) != 2 or not all(isinstance(c, Integral) and c >= 0 for c in calib):
            raise UserError(
                f"{type(self).__name__}: calib must be (rows, cols) of integers >= 0, got {calib}"
            )
        self.accelerations = accelerations
        self.calib = calib
        self.rng = np.random.RandomState(seed)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(accelerations={self.accelerations}, calib={self.calib})"

    def __call__(
        self, shape: Sequence[int], offset: int | None = None, seed: Seed = None
    ) -> SampledMask:
        """Sample a 2D mask for k-space of fastMRI shape ``(..., H, W, 2)``.

        Args:
            shape: k-space shape with at least 3 entries; the mask covers ``shape[-3:-1]``.
            offset: ignored (kept for the fastMRI call signature).
            seed: as for the column masks: reseeds the generator for this call only.

        Returns:
            ``SampledMask(mask, num_low_frequencies)``: a float32 0/1 tensor with ``len(shape)``
            dimensions, ``H`` and ``W`` in the places of ``shape`` and 1 elsewhere
            (``(1, H, W, 1)`` for ``(coils, H, W, 2)``), and the calibration block's width
            ``calib[1]`` (its ``calib[0]`` rows are :attr:`calib`'s).
        """
        check_kspace_shape(type(self).__name__, shape)
        with temporary_seed(self.rng, seed):
            acceleration = self.accelerations[self.rng.randint(len(self.accelerations))]
            sample_seed = int(self.rng.randint(0, 2**31 - 1))
        mask = self.sample((int(shape[-3]), int(shape[-2])), acceleration, sample_seed)
        mask_shape = [1] * len(shape)
        mask_shape[-3:-1] = mask.shape
        return SampledMask(mask.reshape(mask_shape), int(self.calib[1]))

    def sample(self, shape: tuple[int, int], acceleration: float, seed: int) -> torch.Tensor:
        """Draw one float32 0/1 ``(H, W)`` mask for ``shape = (H, W)``."""
        raise NotImplementedError(f"{type(self).__name__} must implement sample")
