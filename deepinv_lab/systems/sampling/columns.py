"""fastMRI's column masks (``fastmri.data.subsample``, v0.3.0), reproduced bit for bit.

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
reads ``W = shape[-2]`` and returns a :class:`~deepinv_lab.systems.sampling.base.SampledMask`
whose mask is float32 of shape ``(1, ..., 1, W, 1)``, as fastMRI's.
:func:`~deepinv_lab.systems.sampling.layout.to_column_mask` turns it into this project's
convention, ``(1, 1, W)`` per sample, which broadcasts against complex k-space ``(coils, H, W)``
and collates to ``(B, 1, 1, W)``::

    mask_func = RandomMaskFunc(center_fractions=[0.08], accelerations=[4], seed=0)
    mask, num_low_frequencies = mask_func((coils, height, width, 2))
    mask = to_column_mask(mask)  # (1, 1, width)
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


def _column_mask(num_cols: int, columns: slice | np.ndarray) -> np.ndarray:
    """``(W,)`` float32 mask, 1 at ``columns`` (an index into the ``W`` columns), else 0."""
    mask = np.zeros(num_cols, dtype=np.float32)
    mask[columns] = 1
    return mask


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
    ) -> SampledMask:
        """Sample a mask for k-space of fastMRI shape ``(..., H, W, 2)``.

        Args:
            shape: k-space shape with at least 3 entries; the mask selects columns ``shape[-2]``.
            offset: first column of the equispaced pattern; drawn at random when ``None``
                (ignored by :class:`RandomMaskFunc`).
            seed: when given, the generator is reseeded for this call only, so the mask depends on
                ``seed`` alone; when ``None`` the generator advances.

        Returns:
            ``SampledMask(mask, num_low_frequencies)``: a float32 0/1 tensor of shape
            ``(1, ..., 1, W, 1)`` (``len(shape)`` dimensions) and the number of fully sampled
            center columns, an ``int`` as fastMRI's.
        """
        check_kspace_shape(type(self).__name__, shape)
        if offset is not None and offset < 0:
            raise ValueError(f"{type(self).__name__}: offset must be >= 0, got {offset}")
        with temporary_seed(self.rng, seed):
            center_mask, acceleration_mask, num_low_frequencies = self.sample_mask(shape, offset)
        mask = np.maximum(center_mask, acceleration_mask).astype(np.float32)
        return SampledMask(self._reshape(mask, shape), num_low_frequencies)

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
        start = (num_cols - num_low_frequencies + 1) // 2
        return _column_mask(num_cols, slice(start, start + num_low_frequencies))

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
        return _column_mask(num_cols, slice(offset, None, int(acceleration)))


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
        return _column_mask(num_cols, np.rint(positions).astype(np.int64))


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
