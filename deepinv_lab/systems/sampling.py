"""Cartesian k-space sampling masks with fastMRI's semantics (``fastmri.data.subsample``, v0.3.0).

A mask function picks a ``(center_fraction, acceleration)`` pair, keeps a fully sampled block of
``round(W * center_fraction)`` central columns (the ACS lines) and subsamples the remaining columns
with a pattern that depends on the subclass:

* :class:`RandomMaskFunc` -- each column independently with probability
  ``(W / acceleration - n_low) / (W - n_low)``, so that about ``W / acceleration`` columns are kept,
* :class:`EquispacedMaskFunc` -- every ``acceleration``-th column from an offset,
* :class:`EquispacedMaskFractionFunc` -- approximately equispaced columns whose spacing is adjusted
  for the ACS block, so that about ``W / acceleration`` columns are kept in total.

Randomness comes from a ``numpy.random.RandomState`` owned by the mask function, drawn in the same
order as fastMRI; a per-call ``seed`` temporarily reseeds it. The same constructor arguments, shape,
offset and seed therefore give the bit-identical mask as fastMRI, so masks of the public fastMRI
validation data (seeded with ``tuple(map(ord, fname))``) are reproduced exactly.

Shapes: a mask function is called with a fastMRI k-space shape ``(..., H, W, 2)`` (real/imag last),
reads ``W = shape[-2]`` and returns a float32 mask of shape ``(1, ..., 1, W, 1)`` as fastMRI does.
:func:`to_column_mask` turns it into this project's convention, ``(1, 1, W)`` per sample, which
broadcasts against complex k-space ``(coils, H, W)`` and collates to ``(B, 1, 1, W)``::

    mask_func = RandomMaskFunc(center_fractions=[0.08], accelerations=[4], seed=0)
    mask, num_low_frequencies = mask_func((coils, height, width, 2))
    mask = to_column_mask(mask)  # (1, 1, width)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from numbers import Integral, Real

import numpy as np
import torch

from deepinv_lab.errors import UserError

Seed = int | tuple[int, ...] | None


@contextlib.contextmanager
def _temporary_seed(rng: np.random.RandomState, seed: Seed) -> Iterator[None]:
    """Reseed ``rng`` for the duration of the block, then restore its previous state.

    With ``seed=None`` the generator is used as is and advances, as in fastMRI's ``temp_seed``.
    """
    if seed is None:
        yield
        return
    state = rng.get_state()
    rng.seed(seed)
    try:
        yield
    finally:
        rng.set_state(state)


class MaskFunc:
    """Base class of column-subsampling masks: a fully sampled center plus an acceleration pattern.

    A call draws ``(center_fraction, acceleration)`` -- one index into both lists, or with
    ``allow_any_combination`` one value from each list independently -- then builds the center mask
    (:meth:`calculate_center_mask`) and the mask of the outer columns
    (:meth:`calculate_acceleration_mask`) and returns their union. Subclasses override
    :meth:`calculate_acceleration_mask`.

    Args:
        center_fractions: fractions of the ``W`` columns kept fully sampled around the center; one
            is chosen uniformly at random per call.
        accelerations: undersampling factors, paired with ``center_fractions`` (same length) unless
            ``allow_any_combination`` is set.
        allow_any_combination: draw the center fraction and the acceleration independently.
        seed: seed of the mask function's own ``numpy.random.RandomState``.
    """

    def __init__(
        self,
        center_fractions: Sequence[float],
        accelerations: Sequence[float],
        allow_any_combination: bool = False,
        seed: int | None = None,
    ):
        center_fractions = list(center_fractions)
        accelerations = list(accelerations)
        if not center_fractions or not accelerations:
            raise UserError(
                f"{type(self).__name__}: center_fractions and accelerations must be non-empty, "
                f"got center_fractions={center_fractions}, accelerations={accelerations}"
            )
        if len(center_fractions) != len(accelerations) and not allow_any_combination:
            raise UserError(
                f"{type(self).__name__}: center_fractions (length {len(center_fractions)}: "
                f"{center_fractions}) and accelerations (length {len(accelerations)}: "
                f"{accelerations}) must have the same length, unless allow_any_combination=True"
            )
        for fraction in center_fractions:
            if not isinstance(fraction, Real) or not 0 <= fraction < 1:
                raise UserError(
                    f"{type(self).__name__}: center_fractions must lie in [0, 1), got {fraction!r}"
                )
        for acceleration in accelerations:
            if not isinstance(acceleration, Real) or not acceleration >= 1:
                raise UserError(
                    f"{type(self).__name__}: accelerations must be numbers >= 1, "
                    f"got {acceleration!r}"
                )
        self.center_fractions = center_fractions
        self.accelerations = accelerations
        self.allow_any_combination = allow_any_combination
        self.rng = np.random.RandomState(seed)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(center_fractions={self.center_fractions}, "
            f"accelerations={self.accelerations}, "
            f"allow_any_combination={self.allow_any_combination})"
        )

    def __call__(
        self, shape: Sequence[int], offset: int | None = None, seed: Seed = None
    ) -> tuple[torch.Tensor, int]:
        """Sample a mask for k-space of fastMRI shape ``(..., H, W, 2)``.

        Args:
            shape: k-space shape with at least 3 entries; the mask selects columns ``shape[-2]``.
            offset: first column of the equispaced pattern; drawn at random when ``None``
                (ignored by :class:`RandomMaskFunc`).
            seed: when given, the generator is reseeded for this call only, so the mask depends on
                ``seed`` alone; when ``None`` the generator advances.

        Returns:
            ``(mask, num_low_frequencies)``: a float32 0/1 tensor of shape ``(1, ..., 1, W, 1)``
            (``len(shape)`` dimensions) and the number of fully sampled center columns.
        """
        if len(shape) < 3:
            raise ValueError(
                f"{type(self).__name__}: shape must have 3 or more dimensions (..., H, W, 2), "
                f"got {tuple(shape)}"
            )
        if offset is not None and offset < 0:
            raise ValueError(f"{type(self).__name__}: offset must be >= 0, got {offset}")
        with _temporary_seed(self.rng, seed):
            center_mask, acceleration_mask, num_low_frequencies = self.sample_mask(shape, offset)
        mask = np.maximum(center_mask, acceleration_mask).astype(np.float32)
        return self._reshape(mask, shape), num_low_frequencies

    def sample_mask(
        self, shape: Sequence[int], offset: int | None
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """Draw the center and acceleration masks, each of shape ``(W,)``, and the ACS width."""
        num_cols = int(shape[-2])
        center_fraction, acceleration = self.choose_acceleration()
        # Python's round (half to even) on the float product, as fastMRI.
        num_low_frequencies = round(num_cols * center_fraction)
        if num_low_frequencies >= num_cols:
            raise UserError(
                f"{type(self).__name__}: the center_fractions entry {center_fraction} keeps all "
                f"{num_cols} k-space columns; nothing is left to subsample "
                "(use a smaller center fraction)"
            )
        center_mask = self.calculate_center_mask(num_cols, num_low_frequencies)
        acceleration_mask = self.calculate_acceleration_mask(
            num_cols, acceleration, offset, num_low_frequencies
        )
        return center_mask, acceleration_mask, num_low_frequencies

    def choose_acceleration(self) -> tuple[float, float]:
        """Draw ``(center_fraction, acceleration)``; consumes the generator exactly as fastMRI."""
        if self.allow_any_combination:
            center_fraction = self.rng.choice(self.center_fractions)
            acceleration = self.rng.choice(self.accelerations)
            return center_fraction, acceleration
        # A draw happens even with a single choice: later draws depend on it.
        index = self.rng.randint(len(self.center_fractions))
        return self.center_fractions[index], self.accelerations[index]

    @staticmethod
    def calculate_center_mask(num_cols: int, num_low_frequencies: int) -> np.ndarray:
        """``(W,)`` mask of ``num_low_frequencies`` contiguous columns starting at
        ``(W - num_low_frequencies + 1) // 2`` (for even ``W`` and an odd count, the extra column
        goes to the right of the DC column ``W // 2``)."""
        mask = np.zeros(num_cols, dtype=np.float32)
        start = (num_cols - num_low_frequencies + 1) // 2
        mask[start : start + num_low_frequencies] = 1
        return mask

    def calculate_acceleration_mask(
        self,
        num_cols: int,
        acceleration: float,
        offset: int | None,
        num_low_frequencies: int,
    ) -> np.ndarray:
        """``(W,)`` mask of the columns sampled outside the center block."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement calculate_acceleration_mask"
        )

    @staticmethod
    def _reshape(mask: np.ndarray, shape: Sequence[int]) -> torch.Tensor:
        mask_shape = [1] * len(shape)
        mask_shape[-2] = mask.shape[0]
        return torch.from_numpy(mask.reshape(mask_shape))


class RandomMaskFunc(MaskFunc):
    """Center block plus columns kept independently at random.

    Each column is kept with probability ``p = (W / acceleration - n_low) / (W - n_low)``, where
    ``n_low = round(W * center_fraction)``, so that ``W / acceleration`` columns are kept on
    average (the draws cover all ``W`` columns, the center ones included). This is the mask of the
    fastMRI knee challenge (Zbontar et al., 2018, arXiv:1811.08839).
    """

    def calculate_acceleration_mask(
        self,
        num_cols: int,
        acceleration: float,
        offset: int | None,
        num_low_frequencies: int,
    ) -> np.ndarray:
        keep_probability = (num_cols / acceleration - num_low_frequencies) / (
            num_cols - num_low_frequencies
        )
        return (self.rng.uniform(size=num_cols) < keep_probability).astype(np.float32)


class EquispacedMaskFunc(MaskFunc):
    """Center block plus every ``acceleration``-th column, starting at ``offset``.

    The offset is drawn uniformly from ``{0, ..., acceleration - 1}`` unless given. As in
    GRAPPA-style acquisitions the spacing is exact, so with the center block the effective
    acceleration is below ``acceleration``. fastMRI spells this class ``EquiSpacedMaskFunc``.
    Accelerations must be integers.
    """

    def __init__(
        self,
        center_fractions: Sequence[float],
        accelerations: Sequence[int],
        allow_any_combination: bool = False,
        seed: int | None = None,
    ):
        super().__init__(center_fractions, accelerations, allow_any_combination, seed)
        for acceleration in self.accelerations:
            if not isinstance(acceleration, Integral):
                raise UserError(
                    f"{type(self).__name__}: accelerations must be integers (the column "
                    f"spacing), got {acceleration!r}"
                )

    def calculate_acceleration_mask(
        self,
        num_cols: int,
        acceleration: float,
        offset: int | None,
        num_low_frequencies: int,
    ) -> np.ndarray:
        if offset is None:
            offset = self.rng.randint(0, high=round(acceleration))
        mask = np.zeros(num_cols, dtype=np.float32)
        mask[offset :: int(acceleration)] = 1
        return mask


class EquispacedMaskFractionFunc(MaskFunc):
    """Center block plus approximately equispaced columns, ``W / acceleration`` columns in total.

    The outer columns are spaced by ``a' = acceleration (W - n_low) / (W - acceleration n_low)``,
    the spacing at which the center block and the outer columns together make up
    ``W / acceleration`` columns. Positions ``offset + k a'`` below ``W - 1`` are rounded half to
    even, so the pattern is not exactly equispaced (fastMRI issue #54); this is the mask of the
    public fastMRI multicoil data. The offset is drawn from ``{0, ..., round(a') - 1}`` unless
    given. Requires ``acceleration * n_low < W``.
    """

    def calculate_acceleration_mask(
        self,
        num_cols: int,
        acceleration: float,
        offset: int | None,
        num_low_frequencies: int,
    ) -> np.ndarray:
        if acceleration * num_low_frequencies >= num_cols:
            raise UserError(
                f"{type(self).__name__}: the center block of {num_low_frequencies} columns "
                f"already reaches acceleration {acceleration} for width {num_cols}; use a smaller "
                "center_fractions entry or a lower acceleration"
            )
        adjusted_acceleration = (acceleration * (num_low_frequencies - num_cols)) / (
            num_low_frequencies * acceleration - num_cols
        )
        if offset is None:
            offset = self.rng.randint(0, high=round(adjusted_acceleration))
        # np.arange with a float step (not offset + k * step) for bit-identical positions.
        positions = np.arange(offset, num_cols - 1, adjusted_acceleration)
        mask = np.zeros(num_cols, dtype=np.float32)
        mask[np.rint(positions).astype(np.int64)] = 1
        return mask


MASK_FUNCS: dict[str, type[MaskFunc]] = {
    "random": RandomMaskFunc,
    "equispaced": EquispacedMaskFunc,
    "equispaced_fraction": EquispacedMaskFractionFunc,
}


def create_mask_for_mask_type(
    mask_type: str,
    center_fractions: Sequence[float],
    accelerations: Sequence[float],
    allow_any_combination: bool = False,
    seed: int | None = None,
) -> MaskFunc:
    """Build the mask function named ``mask_type`` (one of the keys of :data:`MASK_FUNCS`:
    ``"random"``, ``"equispaced"``, ``"equispaced_fraction"``), as fastMRI's factory does."""
    try:
        mask_class = MASK_FUNCS[mask_type]
    except KeyError:
        raise UserError(
            f"mask_type must be one of {sorted(MASK_FUNCS)}, got {mask_type!r}"
        ) from None
    return mask_class(center_fractions, accelerations, allow_any_combination, seed)


def to_column_mask(mask: torch.Tensor) -> torch.Tensor:
    """fastMRI mask ``(1, ..., 1, W, 1)`` -> column mask ``(1, 1, W)``.

    The result broadcasts against one sample's complex k-space ``(coils, H, W)``; a batch of them
    collates to ``(B, 1, 1, W)``, the layout :class:`~deepinv_lab.systems.mri.KSpaceMask` expects.
    """
    if mask.ndim < 2 or mask.shape[-1] != 1 or mask.numel() != mask.shape[-2]:
        raise ValueError(
            "to_column_mask expects a fastMRI mask of shape (1, ..., 1, W, 1), "
            f"got {tuple(mask.shape)}"
        )
    return mask.reshape(1, 1, mask.shape[-2])


# --- 2D masks: both k-space directions undersampled -------------------------------------------
#
# For single-slice compressed sensing and the phase-encode plane of 3D Cartesian imaging, a mask
# selects points of the (H, W) k-space grid, not whole columns. The calibration (ACS) block of
# ``calib = (rows, cols)`` points is fully sampled and starts at row ``(H - rows) // 2`` and
# column ``(W - cols) // 2`` (:func:`calibration_slices`): the project's center-crop convention
# and SigPy's, so it contains the DC location ``(H // 2, W // 2)``. (fastMRI's column masks put
# an odd block one column further right for even ``W``.)


def calibration_slices(shape: Sequence[int], calib: Sequence[int]) -> tuple[slice, slice]:
    """Row and column slices of the fully sampled ``calib = (rows, cols)`` block of ``(H, W)``."""
    return tuple(  # type: ignore[return-value]
        slice((size - width) // 2, (size - width) // 2 + width)
        for size, width in zip(shape, calib, strict=True)
    )


def _check_2d(
    name: str, shape: Sequence[int], acceleration: float, calib: Sequence[int], seed: int
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Validate the common arguments of the 2D masks; return ``shape`` and ``calib`` as ints."""
    if len(shape) != 2 or not all(isinstance(s, Integral) and s >= 2 for s in shape):
        raise UserError(f"{name}: shape must be (H, W) with H, W >= 2, got {tuple(shape)}")
    if len(calib) != 2 or not all(
        isinstance(c, Integral) and 0 <= c < s for c, s in zip(calib, shape, strict=True)
    ):
        raise UserError(
            f"{name}: calib must be (rows, cols) with 0 <= rows < H and 0 <= cols < W for shape "
            f"{tuple(shape)}, got {tuple(calib)}"
        )
    if not isinstance(acceleration, Real) or not acceleration > 1:
        raise UserError(f"{name}: acceleration must be a number > 1, got {acceleration!r}")
    if not isinstance(seed, Integral) or not 0 <= seed < 2**32:
        raise UserError(f"{name}: seed must be an integer in [0, 2**32), got {seed!r}")
    height, width = (int(s) for s in shape)
    rows, cols = (int(c) for c in calib)
    target = height * width / acceleration
    if rows * cols >= target:
        raise UserError(
            f"{name}: the calibration block {rows} x {cols} = {rows * cols} points is not "
            f"below the {target:.0f} points of acceleration {acceleration} for shape "
            f"{(height, width)}; use a smaller calib or a lower acceleration"
        )
    return (height, width), (rows, cols)


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

    Cost: one disc sampling per bisection step (about 10-20 steps); per mask on one CPU core
    0.07 s at 64 x 64, 0.35 s at 128 x 128, 1.5 s at 320 x 320: draw masks in DataLoader workers
    or precompute them. A retry (about 1 seed in 20 with a 24 x 24 block at 64 x 64) costs more.

    Args:
        shape: k-space size ``(H, W)``.
        acceleration: target ``H W / #samples``, > 1 (below about 1.5 the discs cannot be packed
            densely enough and a ``ValueError`` follows).
        calib: fully sampled block ``(rows, cols)`` around DC (:func:`calibration_slices`).
        seed: integer in ``[0, 2**32)``; the same seed gives the same mask.
        crop_corner, max_attempts, tol: as in ``sigpy.mri.poisson``.
        max_retries: extra seeds to try when a seed fails (see above).
        max_bisections: bisection steps per seed.

    Returns:
        float32 0/1 tensor ``(H, W)``.
    """
    (height, width), (rows, cols) = _check_2d("poisson_disc_mask", shape, acceleration, calib, seed)
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
    # lazy: SigPy (and numba's compiled kernel) load only where Poisson disc masks are drawn
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
        calib: fully sampled block ``(rows, cols)`` around DC (:func:`calibration_slices`).
        power: decay exponent; larger concentrates samples near the center (0: uniform).
        seed: integer in ``[0, 2**32)`` seeding a ``numpy.random.RandomState``.

    Returns:
        float32 0/1 tensor ``(H, W)``.
    """
    (height, width), (rows, cols) = _check_2d(
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


class MaskFunc2D:
    """Base class of the 2D mask functions: each call draws an acceleration and a sample seed from
    the function's own generator and passes them to :meth:`sample`, which subclasses implement."""

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
    ) -> tuple[torch.Tensor, tuple[int, int]]:
        """Sample a 2D mask for k-space of fastMRI shape ``(..., H, W, 2)``.

        Args:
            shape: k-space shape with at least 3 entries; the mask covers ``shape[-3:-1]``.
            offset: ignored (kept for the fastMRI call signature).
            seed: as for :class:`MaskFunc`: reseeds the generator for this call only.

        Returns:
            ``(mask, calib)``: a float32 0/1 tensor with ``len(shape)`` dimensions, ``H`` and ``W``
            in the places of ``shape`` and 1 elsewhere (``(1, H, W, 1)`` for ``(coils, H, W, 2)``),
            and the calibration block ``(rows, cols)``.
        """
        if len(shape) < 3:
            raise ValueError(
                f"{type(self).__name__}: shape must have 3 or more dimensions (..., H, W, 2), "
                f"got {tuple(shape)}"
            )
        with _temporary_seed(self.rng, seed):
            acceleration = self.accelerations[self.rng.randint(len(self.accelerations))]
            sample_seed = int(self.rng.randint(0, 2**31 - 1))
        mask = self.sample((int(shape[-3]), int(shape[-2])), acceleration, sample_seed)
        mask_shape = [1] * len(shape)
        mask_shape[-3:-1] = mask.shape
        return mask.reshape(mask_shape), self.calib

    def sample(self, shape: tuple[int, int], acceleration: float, seed: int) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement sample")


class PoissonDiscMaskFunc(MaskFunc2D):
    """:func:`poisson_disc_mask` as a fastMRI-style mask function.

    Each call draws one of ``accelerations`` and an integer seed from the function's own
    ``numpy.random.RandomState`` (reseeded for the call when ``seed`` is given, e.g.
    ``tuple(map(ord, fname))``), so masks are reproducible.

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


class VariableDensityMaskFunc(MaskFunc2D):
    """:func:`variable_density_mask` as a fastMRI-style mask function (see
    :class:`PoissonDiscMaskFunc` for the call semantics).

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


def to_kspace_mask(mask: torch.Tensor) -> torch.Tensor:
    """fastMRI-layout mask ``(1, ..., 1, H', W, 1)`` -> ``(1, H', W)``, ``H'`` being ``H`` or 1.

    Column masks (:class:`MaskFunc`, ``H' = 1``) become ``(1, 1, W)`` as with
    :func:`to_column_mask`; 2D masks (:class:`PoissonDiscMaskFunc`,
    :class:`VariableDensityMaskFunc`) become ``(1, H, W)``. Either broadcasts against one sample's
    complex k-space ``(coils, H, W)``.
    """
    if mask.ndim < 3 or mask.shape[-1] != 1 or mask.numel() != mask.shape[-3] * mask.shape[-2]:
        raise ValueError(
            "to_kspace_mask expects a fastMRI-layout mask of shape (1, ..., 1, H or 1, W, 1), "
            f"got {tuple(mask.shape)}"
        )
    return mask.reshape(1, mask.shape[-3], mask.shape[-2])


def batch_masks(
    mask_func: MaskFunc | MaskFunc2D,
    batch_size: int,
    shape: Sequence[int],
    seeds: Sequence[Seed] | int | None = None,
) -> torch.Tensor:
    """Per-sample masks of a batch, stacked: ``(B, 1, H, W)`` (2D) or ``(B, 1, 1, W)`` (columns).

    Args:
        mask_func: any mask function of this module (fastMRI column masks or 2D masks).
        batch_size: ``B``.
        shape: k-space size ``(H, W)``; the function is called with ``(1, H, W, 2)``.
        seeds: one seed per sample; an integer ``s`` stands for ``[(s, 0), ..., (s, B - 1)]``;
            ``None`` lets the function's own generator advance (reproducible given its seed).

    Returns:
        float32 masks whose samples differ (drawn independently), ready for
        :class:`~deepinv_lab.systems.mri.MultiCoilMRI` or
        :class:`~deepinv_lab.systems.mri.SingleCoilMRI`.
    """
    if not isinstance(batch_size, Integral) or batch_size < 1:
        raise UserError(f"batch_masks: batch_size must be an integer >= 1, got {batch_size!r}")
    if len(shape) != 2:
        raise UserError(f"batch_masks: shape must be the k-space size (H, W), got {tuple(shape)}")
    if seeds is None:
        seeds = [None] * batch_size
    elif isinstance(seeds, Integral):
        seeds = [(int(seeds), index) for index in range(batch_size)]
    elif len(seeds) != batch_size:
        raise UserError(
            f"batch_masks: expected {batch_size} seeds (one per sample), got {len(seeds)}"
        )
    masks = [to_kspace_mask(mask_func((1, *shape, 2), seed=seed)[0]) for seed in seeds]
    return torch.stack(masks)
