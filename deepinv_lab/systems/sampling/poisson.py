"""Variable-density Poisson-disc masks (SigPy's sampler under a bounded slope search), and
:class:`PoissonDiscMaskFunc`, their fastMRI-style mask function."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from deepinv_lab.errors import UserError
from deepinv_lab.systems.sampling.masks2d import (
    MaskFunc2D,
    calibration_slices,
    check_2d_mask_arguments,
)


def poisson_disc_mask(
    shape: Sequence[int],
    acceleration: float,
    calib: Sequence[int] = (24, 24),
    seed: int = 0,
    crop_corner: bool = True,
    max_attempts: int = 30,
    tol: float = 0.1,
    max_retries: int = 8,
    max_bisections: int = 50,
) -> torch.Tensor:
    """Variable-density Poisson-disc mask of an ``(H, W)`` k-space grid, as ``sigpy.mri.poisson``.

    Points keep a minimum distance that grows as ``1 + s r`` with the distance ``r`` from the
    calibration block (Bridson, SIGGRAPH sketches 2007); the slope ``s`` is bisected until the
    achieved acceleration ``H W / #samples`` is within ``tol`` (absolute) of ``acceleration``.
    ``crop_corner`` drops the k-space corners beyond the inscribed ellipse. The disc sampling is
    SigPy's compiled kernel (``sigpy.mri.samp._poisson``) and the bisection is SigPy's, with two
    safeguards that ``sigpy.mri.poisson`` (0.1.27) lacks:

    * the bisection stops after ``max_bisections`` steps: the achieved acceleration is not a
      continuous function of ``s``, and when it jumps over the tolerance band SigPy's loop never
      ends (``shape=(64, 64), acceleration=8, calib=(12, 12), seed=7`` hangs);
    * the disc growth starts from one random point, and when that falls deep inside the
      calibration block no point can be added and every slope fails.

    Either way the mask is drawn again with seeds derived from ``(seed, retry)``, up to
    ``max_retries`` times, so the result is still a function of ``seed`` alone. When SigPy
    succeeds, ``seed`` reproduces ``sigpy.mri.poisson(shape, acceleration, calib, seed=seed)``.

    Cost: one disc sampling per bisection step (about 10-20 steps), which grows with ``H W``: up
    to seconds per mask on one CPU core at fastMRI sizes, so draw masks in DataLoader workers or
    precompute them. A retry (about 1 seed in 20 with a 24 x 24 block at 64 x 64) costs more.

    Args:
        shape: k-space size ``(H, W)``.
        acceleration: target ``H W / #samples``, > 1 (below about 1.5 the discs cannot be packed
            densely enough and a ``ValueError`` follows).
        calib: fully sampled block ``(rows, cols)`` around DC
            (:func:`~deepinv_lab.systems.sampling.masks2d.calibration_slices`).
        seed: integer in ``[0, 2**32)``; the same seed gives the same mask.
        crop_corner, max_attempts, tol: as in ``sigpy.mri.poisson``.
        max_retries: extra seeds to try when a seed fails (see above).
        max_bisections: bisection steps per seed.

    Returns:
        float32 0/1 tensor ``(H, W)``.
    """
    (height, width), (rows, cols) = check_2d_mask_arguments(
        "poisson_disc_mask", shape, acceleration, calib, seed
    )
    for retry in range(max_retries + 1):
        retry_seed = (
            int(seed)
            if retry == 0
            else int(np.random.SeedSequence([seed, retry]).generate_state(1)[0])
        )
        mask = _poisson_disc_bisection(
            (height, width),
            float(acceleration),
            (rows, cols),
            retry_seed,
            crop_corner,
            max_attempts,
            tol,
            max_bisections,
        )
        if mask is not None:
            break
    else:
        raise UserError(
            f"poisson_disc_mask: could not reach acceleration {acceleration} (tolerance {tol}) "
            f"for shape {(height, width)} and calib {(rows, cols)} with seed {seed} and "
            f"{max_retries} retries; accelerations below about 1.5 cannot be reached"
        )
    mask = torch.from_numpy(mask.astype(np.float32))
    # A no-op (SigPy's block starts at int(n / 2 - c / 2) = (n - c) // 2 as well), kept so that the
    # documented guarantee does not rest on SigPy's internals.
    mask[calibration_slices((height, width), (rows, cols))] = 1
    return mask


def _poisson_disc_bisection(
    shape: tuple[int, int],
    acceleration: float,
    calib: tuple[int, int],
    seed: int,
    crop_corner: bool,
    max_attempts: int,
    tol: float,
    max_bisections: int,
) -> np.ndarray | None:
    """``sigpy.mri.poisson``'s slope bisection, stopped after ``max_bisections`` steps.

    Returns the ``(H, W)`` mask, or ``None`` when no slope reached the tolerance.
    """
    # A private SigPy kernel, on purpose: its public wrapper `sigpy.mri.poisson` is the unbounded
    # bisection this function replaces, and reimplementing the numba kernel ourselves would give
    # up the documented bit-identity with `sigpy.mri.poisson` (numba's own random stream) or,
    # in plain numpy, be about 100x slower. The risk is the kernel's name or signature changing:
    # constraints.txt pins SigPy, and tests/test_sampling_2d.py compares against
    # `sigpy.mri.poisson`, so an upgrade that breaks it fails there.
    # Imported lazily: SigPy and numba load only where Poisson-disc masks are drawn.
    from sigpy.mri.samp import _poisson

    height, width = shape
    rows, cols = np.mgrid[:height, :width]
    # Distance beyond the calibration block, per axis scaled to [0, 1], as SigPy.
    x = np.maximum(np.abs(cols - width / 2) - calib[1] / 2, 0)
    y = np.maximum(np.abs(rows - height / 2) - calib[0] / 2, 0)
    radius = np.sqrt((x / x.max()) ** 2 + (y / y.max()) ** 2)
    largest = max(height, width)
    slope_min, slope_max = 0.0, float(largest)
    for _ in range(max_bisections):
        slope = (slope_max + slope_min) / 2
        radius_x = np.clip((1 + radius * slope) * width / largest, 1, None)
        radius_y = np.clip((1 + radius * slope) * height / largest, 1, None)
        mask = _poisson(width, height, max_attempts, radius_x, radius_y, calib, seed)
        if crop_corner:
            mask *= radius < 1
        achieved = height * width / np.sum(mask)
        if abs(achieved - acceleration) < tol:
            return mask
        if achieved < acceleration:
            slope_min = slope
        else:
            slope_max = slope
    return None


class PoissonDiscMaskFunc(MaskFunc2D):
    """:func:`poisson_disc_mask` as a fastMRI-style mask function.

    Each call draws one of ``accelerations`` and an integer seed from the function's own
    ``numpy.random.RandomState`` (reseeded for the call when ``seed`` is given, e.g.
    ``tuple(map(ord, fname))``), so masks are reproducible. A call returns a
    :class:`~deepinv_lab.systems.sampling.base.SampledMask`
    (:meth:`~deepinv_lab.systems.sampling.masks2d.MaskFunc2D.__call__`).

    Args:
        accelerations: candidate accelerations (> 1), one drawn uniformly per call.
        calib: fully sampled block ``(rows, cols)``.
        seed: seed of the function's generator.
        crop_corner: passed to :func:`poisson_disc_mask`.
    """

    def __init__(
        self,
        accelerations: Sequence[float],
        calib: Sequence[int] = (24, 24),
        seed: int | None = None,
        crop_corner: bool = True,
    ):
        super().__init__(accelerations, calib, seed)
        self.crop_corner = crop_corner

    def sample(self, shape: tuple[int, int], acceleration: float, seed: int) -> torch.Tensor:
        return poisson_disc_mask(shape, acceleration, self.calib, seed, self.crop_corner)
