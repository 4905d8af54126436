"""Reproducible nested subsets: the first items of a seeded random permutation.

Taking the first ``size`` items of one permutation makes the subsets of growing sizes nested (a
larger training set contains every smaller one), which scaling-law studies need, and spreads every
size over the whole data (the first files or slices in order would not).
"""

from __future__ import annotations

import numpy as np
import torch


def nested_subset(
    count: int, size: int, generator: torch.Generator | np.random.Generator
) -> list[int]:
    """``size`` of the indices ``0 .. count - 1``: the first ``size`` of a random permutation,
    sorted.

    Args:
        count: number of items to choose from.
        size: number of items kept, ``0 <= size <= count``.
        generator: draws the permutation: ``torch.randperm`` with a torch generator,
            ``Generator.permutation`` with a numpy one (the two give different subsets of one
            seed; each dataset keeps the one its subsets have always been drawn with).

    Returns:
        The kept indices in increasing order; for one ``count`` and generator seed, the subset of
        a smaller ``size`` is contained in that of a larger one.

    Raises:
        ValueError: ``size`` outside ``[0, count]`` (callers check user input first).
    """
    if not 0 <= size <= count:
        raise ValueError(f"nested_subset: size must be in [0, {count}], got {size}")
    if isinstance(generator, np.random.Generator):
        order = generator.permutation(count)
    else:
        order = torch.randperm(count, generator=generator)
    return sorted(order[:size].tolist())
