"""Where square (cubic) patches are cropped from an image (volume), and their flips/rotations.

Shared by the image datasets (:mod:`deepinv_lab.data.images`, :mod:`deepinv_lab.data.folders`)
and, with ``dims=3``, the volume datasets (:mod:`deepinv_lab.data.volume_datamodules`): fixed
crops on an even grid (validation), random crops and a random one of the 8 flips/90-degree
rotations (training augmentation; volumes: :mod:`deepinv_lab.data.augment3d`).
"""

from __future__ import annotations

import itertools
import math

import torch


def _grid_positions(size: int, patch: int, count: int) -> list[int]:
    """``count`` crop offsets spread evenly over ``[0, size - patch]`` (one: the centre)."""
    if count == 1:
        return [(size - patch) // 2]
    return [round(i * (size - patch) / (count - 1)) for i in range(count)]


def _grid_counts(count: int, dims: int) -> list[int]:
    """Crops per axis of a grid of at least ``count`` crops over ``dims`` axes: the last axis
    gets the smallest ``n`` with ``n ** dims >= count``, the axes before share the rest (2-D:
    ``cols = ceil(sqrt(count))``, ``rows = ceil(count / cols)``)."""
    counts = []
    for axes in range(dims, 0, -1):
        n = 1
        while n**axes < count:
            n += 1
        counts.append(n)
        count = math.ceil(count / n)
    return counts[::-1]


def grid_crops(
    shape: tuple[int, ...], patch: int, count: int, dims: int = 2
) -> list[tuple[int, ...]]:
    """``count`` fixed crops of an image of shape ``(..., H, W)`` (``(top, left)``), or with
    ``dims=3`` of a volume ``(..., D, H, W)`` (``(front, top, left)``): the first ``count`` of an
    even grid (2-D: ``rows x cols``, ``cols = ceil(sqrt(count))``), in row-major order."""
    axes = [
        _grid_positions(size, patch, n)
        for size, n in zip(shape[-dims:], _grid_counts(count, dims), strict=True)
    ]
    return list(itertools.product(*axes))[:count]


def random_crop(
    shape: tuple[int, ...], patch: int, generator: torch.Generator, dims: int = 2
) -> tuple[int, ...]:
    """A uniformly drawn crop ``(top, left)`` of side ``patch`` in an image of shape
    ``(..., H, W)`` (the top is drawn first), or with ``dims=3`` ``(front, top, left)`` in a
    volume ``(..., D, H, W)`` (drawn in that order)."""
    return tuple(
        int(torch.randint(0, size - patch + 1, (), generator=generator)) for size in shape[-dims:]
    )


def draw_dihedral(generator: torch.Generator) -> int:
    """A uniformly drawn flip/rotation number ``k`` in ``0..7`` (:func:`apply_dihedral`)."""
    return int(torch.randint(0, 8, (), generator=generator))


def apply_dihedral(patch: torch.Tensor, k: int) -> torch.Tensor:
    """Flip/rotation ``k`` (0..7) of a square ``(C, P, P)`` patch: ``k >= 4`` flips left-right,
    then ``k % 4`` quarter turns."""
    if k >= 4:
        patch = patch.flip(-1)
    return torch.rot90(patch, k % 4, dims=(-2, -1))
