"""The 48 symmetries of the cube: the training augmentation of cubic 3-D patches.

Symmetry ``k`` (``0..47``) of a volume ``(..., D, H, W)`` first permutes its three spatial axes by
``CUBE_PERMUTATIONS[k // 8]`` (the 6 permutations of ``(D, H, W)``), then flips the axes whose bit
is set in ``k % 8`` (bit ``a`` flips spatial axis ``a`` of the permuted volume): 6 x 8 = 48
transforms, the full symmetry group of the cube (the octahedral group with reflections, of which
the 24 with an even number of flips and an even permutation, or an odd number and an odd one, are
rotations). The 8 flips/rotations of 2-D squares are :func:`~deepinv_lab.data.crops.apply_dihedral`.

In voxel coordinates centred on the volume, symmetry ``k`` maps an output voxel ``u`` to the input
voxel ``M_k u`` of the signed permutation matrix :func:`cube_symmetry_matrix`; applying ``a`` then
``b`` is the symmetry of ``M_a M_b`` (:func:`compose_cube_symmetries`), and every symmetry has an
inverse (:func:`invert_cube_symmetry`), e.g. to undo it on a network's output (self-ensemble).
"""

from __future__ import annotations

import itertools

import torch

#: The 6 permutations of the spatial axes ``(D, H, W)``, in lexicographic order.
CUBE_PERMUTATIONS: tuple[tuple[int, int, int], ...] = tuple(itertools.permutations(range(3)))
#: The number of symmetries of the cube.
NUM_CUBE_SYMMETRIES = 48


def _check(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < NUM_CUBE_SYMMETRIES:
        raise ValueError(f"a cube symmetry is an integer in 0..47, got {k!r}")
    return k


def cube_symmetry(k: int) -> tuple[tuple[int, int, int], tuple[bool, bool, bool]]:
    """``(permutation, flips)`` of symmetry ``k``: the new order of the axes ``(D, H, W)`` and
    which axes of the permuted volume are flipped."""
    _check(k)
    flips = tuple(bool(k % 8 >> axis & 1) for axis in range(3))
    return CUBE_PERMUTATIONS[k // 8], flips


def apply_cube_symmetry(volume: torch.Tensor, k: int) -> torch.Tensor:
    """Symmetry ``k`` (module docstring) of a volume ``(..., D, H, W)``; a view, not a copy
    (call ``.contiguous()`` where that matters). Non-cubic volumes have their shape permuted."""
    permutation, flips = cube_symmetry(k)
    lead = volume.ndim - 3
    if lead < 0:
        raise ValueError(f"a volume has at least 3 dimensions (..., D, H, W), got {volume.ndim}")
    volume = volume.permute(*range(lead), *(lead + axis for axis in permutation))
    flipped = [lead + axis for axis in range(3) if flips[axis]]
    return volume.flip(flipped) if flipped else volume


def draw_cube_symmetry(generator: torch.Generator | None = None) -> int:
    """A uniformly drawn symmetry number in ``0..47``."""
    return int(torch.randint(0, NUM_CUBE_SYMMETRIES, (), generator=generator))


def cube_symmetry_matrix(k: int) -> torch.Tensor:
    """The signed permutation matrix ``M_k`` (int64 ``(3, 3)``) of symmetry ``k``: output voxel
    ``u`` (centred coordinates) is input voxel ``M_k u``."""
    permutation, flips = cube_symmetry(k)
    matrix = torch.zeros(3, 3, dtype=torch.int64)
    for axis in range(3):
        matrix[permutation[axis], axis] = -1 if flips[axis] else 1
    return matrix


_MATRICES = [cube_symmetry_matrix(k) for k in range(NUM_CUBE_SYMMETRIES)]


def _index(matrix: torch.Tensor) -> int:
    for k, candidate in enumerate(_MATRICES):
        if torch.equal(candidate, matrix):
            return k
    raise AssertionError(f"not a signed permutation matrix: {matrix.tolist()}")


def compose_cube_symmetries(first: int, second: int) -> int:
    """The symmetry equal to applying ``first``, then ``second``."""
    return _index(_MATRICES[_check(first)] @ _MATRICES[_check(second)])


def invert_cube_symmetry(k: int) -> int:
    """The symmetry that undoes ``k``: ``apply(apply(v, k), invert(k)) == v``."""
    return _index(_MATRICES[_check(k)].T)
