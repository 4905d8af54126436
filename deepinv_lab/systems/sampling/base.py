"""The contract every mask function keeps: its call signature, its result and per-call seeding.

A mask function is called like fastMRI's, ``mask_func(shape, offset=None, seed=None)``, with a
k-space shape ``(..., H, W, 2)`` (real/imag last), and returns a :class:`SampledMask`. Its
randomness comes from a ``numpy.random.RandomState`` it owns; a per-call ``seed`` reseeds that
generator for the call only (:func:`temporary_seed`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import NamedTuple, Protocol

import numpy as np
import torch

#: A per-call seed: anything ``numpy.random.RandomState.seed`` takes (fastMRI seeds validation
#: masks with ``tuple(map(ord, fname))``), or ``None`` to let the generator advance.
Seed = int | tuple[int, ...] | None


class SampledMask(NamedTuple):
    """One draw of a mask function: the mask and the width of its calibration block.

    It unpacks as fastMRI's ``(mask, num_low_frequencies)``, for column masks
    (:class:`~deepinv_lab.systems.sampling.columns.MaskFunc`) and 2D masks
    (:class:`~deepinv_lab.systems.sampling.masks2d.MaskFunc2D`) alike::

        mask, num_low_frequencies = mask_func((coils, height, width, 2), seed=seed)

    Attributes:
        mask: float32 0/1 tensor in fastMRI's layout, as many dimensions as the k-space shape it
            was drawn for, ``W`` (and for 2D masks ``H``) in their places and 1 elsewhere:
            ``(1, 1, W, 1)`` (columns) or ``(1, H, W, 1)`` (2D) for ``(coils, H, W, 2)``.
            :func:`~deepinv_lab.systems.sampling.layout.to_kspace_mask` gives the project's
            ``(1, H or 1, W)``.
        num_low_frequencies: how many k-space columns the fully sampled calibration (ACS) block
            around DC spans. Column masks sample these columns in every row; 2D masks in the
            block's ``calib[0]`` rows. It is the ``num_low_frequencies`` that
            :class:`~deepinv_lab.systems.mri.KSpaceMask` and VarNet take. Where the block starts
            differs by family for an odd count and even ``W``: fastMRI's column masks start at
            ``(W - n + 1) // 2``, 2D masks at ``(W - n) // 2``
            (:func:`~deepinv_lab.systems.sampling.masks2d.calibration_slices`).
    """

    mask: torch.Tensor
    num_low_frequencies: int


class MaskFunction(Protocol):
    """What :func:`~deepinv_lab.systems.sampling.layout.batch_masks` and the datasets call."""

    def __call__(
        self, shape: Sequence[int], offset: int | None = None, seed: Seed = None
    ) -> SampledMask: ...


@contextlib.contextmanager
def temporary_seed(rng: np.random.RandomState, seed: Seed) -> Iterator[None]:
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


def check_kspace_shape(owner: str, shape: Sequence[int]) -> None:
    """Raise ``ValueError`` unless ``shape`` is a fastMRI k-space shape ``(..., H, W, 2)``."""
    if len(shape) < 3:
        raise ValueError(
            f"{owner}: shape must have 3 or more dimensions (..., H, W, 2), got {tuple(shape)}"
        )
