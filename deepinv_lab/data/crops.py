"""Where square patches are cropped from an image, and their flips/rotations.

Shared by the image datasets (:mod:`deepinv_lab.data.images`, :mod:`deepinv_lab.data.folders`):
fixed crops on an even grid (validation), random crops and a random one of the 8 flips/90-degree
rotations (training augmentation).
"""

from __future__ import annotations

import math

import torch


def _grid_positions(size: int, patch: int, count: int) -> list[int]:
    """``count`` crop offsets spread evenly over ``[0, size - patch]`` (one: the centre)."""
    if count == 1:
        return [(size - patch) // 2]
    return [round(i * (size - patch) / (count - 1)) for i in range(count)]


def grid_crops(shape: tuple[int, ...], patch: int, count: int) -> list[tuple[int, int]]:
    """``count`` fixed crops ``(top, left)`` of an image of shape ``(..., H, W)``: the first
    ``count`` of a ``rows x cols`` grid (``cols = ceil(sqrt(count))``), in row-major order."""
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    tops = _grid_positions(shape[-2], patch, rows)
    lefts = _grid_positions(shape[-1], patch, cols)
    return [(top, left) for top in tops for left in lefts][:count]


def random_crop(shape: tuple[int, ...], patch: int, generator: torch.Generator) -> tuple[int, int]:
    """A uniformly drawn crop ``(top, left)`` of side ``patch`` in an image of shape
    ``(..., H, W)`` (the top is drawn first)."""
    top = int(torch.randint(0, shape[-2] - patch + 1, (), generator=generator))
    left = int(torch.randint(0, shape[-1] - patch + 1, (), generator=generator))
    return top, left


def draw_dihedral(generator: torch.Generator) -> int:
    """A uniformly drawn flip/rotation number ``k`` in ``0..7`` (:func:`apply_dihedral`)."""
    return int(torch.randint(0, 8, (), generator=generator))


def apply_dihedral(patch: torch.Tensor, k: int) -> torch.Tensor:
    """Flip/rotation ``k`` (0..7) of a square ``(C, P, P)`` patch: ``k >= 4`` flips left-right,
    then ``k % 4`` quarter turns."""
    if k >= 4:
        patch = patch.flip(-1)
    return torch.rot90(patch, k % 4, dims=(-2, -1))
