"""The built-in brain volume: 3-D patches of the MNI152 T1 template
(:mod:`deepinv_lab.data.builtin`), real, or complex with a smooth random 3-D phase for MRI physics.

**Split by region.** The template is one volume ``(z, y, x) = (189, 233, 197)`` at 1 mm (axial
slices ``z``, inferior to superior, as :func:`~deepinv_lab.data.builtin.load_template_slices` gives
them). Training patches lie entirely in the slab ``z in [0, 96)``, validation patches in
``z in [104, 189)`` (:data:`SPLIT_SLABS`): no validation voxel is within 8 mm of a training voxel.
The training slab is the lower part of the head, the validation slab the upper part up to the
vertex.

**Anatomy only.** A patch position is used only if at least ``min_foreground`` of its voxels are
head (intensity above :data:`FOREGROUND_LEVEL` of the template's maximum); the admissible
positions are found once per patch size with a summed-volume table.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from deepinv_lab.data.builtin import load_template_slices
from deepinv_lab.data.checks import positive_int
from deepinv_lab.data.seeding import seeded_generator
from deepinv_lab.data.sources.base import Source, SourceSplit, check_split, split_generator
from deepinv_lab.data.sources.brain import flip_and_scale
from deepinv_lab.data.subsets import nested_subset
from deepinv_lab.errors import UserError

#: ``[start, stop)`` along ``z`` of each split (module docstring).
SPLIT_SLABS: dict[str, tuple[int, int]] = {"train": (0, 96), "val": (104, 189)}
#: Intensity (the template's maximum is 1) above which a voxel counts as head.
FOREGROUND_LEVEL = 0.1
#: Patches per epoch (training) and fixed patches (validation) when none is given.
DEFAULT_PATCHES_PER_VOLUME = {"train": 256, "val": 16}
# Independent random streams of one seed.
_STREAM_VAL, _STREAM_POOL = 1, 2


def _patch_shape(patch_size: int | tuple[int, int, int]) -> tuple[int, int, int]:
    sizes = (patch_size,) * 3 if isinstance(patch_size, int) else tuple(patch_size)
    if len(sizes) != 3 or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in sizes
    ):
        raise UserError(
            f"BuiltinBrainVolume: patch_size must be an integer >= 1 or three of them "
            f"(D, H, W), got {patch_size!r}"
        )
    return sizes  # type: ignore[return-value]


def _slab(split: str) -> np.ndarray:
    start, stop = SPLIT_SLABS[split]
    return load_template_slices()[start:stop]


@functools.lru_cache(maxsize=8)
def admissible_origins(
    split: str, patch_shape: tuple[int, int, int], min_foreground: float
) -> np.ndarray:
    """The flat indices (int64, into the grid of patch origins of the split's slab, shape
    ``slab.shape - patch_shape + 1``) of the patches with at least ``min_foreground`` head
    voxels."""
    head = (_slab(split) > FOREGROUND_LEVEL).astype(np.int32)
    table = np.zeros(tuple(n + 1 for n in head.shape), dtype=np.int32)
    table[1:, 1:, 1:] = head.cumsum(0).cumsum(1).cumsum(2)
    d, h, w = patch_shape
    counts = (
        table[d:, h:, w:] - table[:-d, h:, w:] - table[d:, :-h, w:] - table[d:, h:, :-w]
        + table[:-d, :-h, w:] + table[:-d, h:, :-w] + table[d:, :-h, :-w] - table[:-d, :-h, :-w]
    )  # fmt: skip
    return np.flatnonzero(counts >= min_foreground * (d * h * w))


def smooth_phase_3d(
    shape: tuple[int, int, int], generator: torch.Generator, max_phase: float
) -> torch.Tensor:
    """A random smooth 3-D phase map ``(D, H, W)``: a 2nd-order polynomial in the coordinates
    ``z, y, x`` in ``[-1, 1]`` (10 terms), its coefficients uniform in ``[-max_phase, max_phase]``
    (the 3-D version of :func:`~deepinv_lab.data.builtin.smooth_phase`)."""
    z, y, x = torch.meshgrid(*(torch.linspace(-1, 1, n) for n in shape), indexing="ij")
    basis = torch.stack([torch.ones_like(x), x, y, z, x * y, x * z, y * z, x**2, y**2, z**2])
    coefficients = (2 * torch.rand(10, 1, 1, 1, generator=generator) - 1) * max_phase
    return (coefficients * basis).sum(0)


class BuiltinBrainVolume(Source):
    """3-D patches of the MNI152 T1 template, the built-in volume data (no download; split and
    patch rule in the module docstring and docs/data.md).

    Training patches are drawn anew at every read (a uniformly drawn admissible position, a
    left-right flip with probability 1/2 and an intensity scale in ``[0.75, 1.25]``, as
    :class:`~deepinv_lab.data.sources.brain.BuiltinBrain`); validation patches are fixed by
    ``seed``. For MRI physics each patch gets a smooth random 3-D phase
    (:func:`smooth_phase_3d`).

    Args:
        patch_size: side of the cubic patches, or their ``(D, H, W)``; at most the slabs' size.
        patches_per_volume: training patches per epoch (default 256).
        val_patches_per_volume: fixed validation patches (default 16), distinct admissible
            positions drawn from ``seed``.
        min_foreground: the least fraction of head voxels of a patch, in ``[0, 1]``.
        max_phase: amplitude (radians) of the phase's coefficients (complex patches only).
        seed: seeds the validation patches and the fixed pool of ``train_size`` patches.

    ``train_size`` (of the DataModule) is a fixed pool of that many distinct training positions
    (nested: a larger pool contains a smaller one), the training-set size of scaling-law studies;
    flips, scales, phases and the physics' draws stay fresh. Items: ``x`` ``(1, D, H, W)`` real,
    or complex for MRI physics, ``target`` its magnitude, ``max_value``, ``volume_id`` (each patch
    is its own volume for the per-volume metrics), ``slice_num`` 0, ``fname``.
    """

    gives_complex = True

    def __init__(
        self,
        patch_size: int | tuple[int, int, int] = 32,
        patches_per_volume: int | None = None,
        val_patches_per_volume: int | None = None,
        min_foreground: float = 0.5,
        max_phase: float = math.pi / 2,
        seed: int = 0,
    ):
        self.patch_shape = _patch_shape(patch_size)
        for name, value in (
            ("patches_per_volume", patches_per_volume),
            ("val_patches_per_volume", val_patches_per_volume),
        ):
            if value is not None:
                positive_int(value, f"BuiltinBrainVolume: {name}")
        if not 0 <= min_foreground <= 1:
            raise UserError(
                f"BuiltinBrainVolume: min_foreground must be in [0, 1], got {min_foreground}"
            )
        self.patches_per_volume = patches_per_volume
        self.val_patches_per_volume = val_patches_per_volume
        self.min_foreground = float(min_foreground)
        self.max_phase = float(max_phase)
        self.seed = int(seed)

    def describe(self) -> str:
        return f"BuiltinBrainVolume(patch_size={list(self.patch_shape)})"

    def split(
        self, split: str, train_size: int | None = None, complex_images: bool = False
    ) -> SourceSplit:
        check_split(split)
        if train_size is not None:
            positive_int(train_size, "data.train_size")
            if self.patches_per_volume is not None:
                raise UserError(
                    f"give either data.train_size ({train_size}, a fixed pool of training "
                    f"patches) or source patches_per_volume ({self.patches_per_volume}, fresh "
                    "random patches every epoch), not both"
                )
        return BrainVolumePatches(
            self, split, train_size if split == "train" else None, complex_images
        )


class BrainVolumePatches(SourceSplit):
    """The patches of one split of :class:`BuiltinBrainVolume`.

    Args:
        source: the source block (patch shape, counts, seed).
        split: ``"train"`` or ``"val"``.
        pool_size: training only: a fixed pool of this many positions instead of fresh ones.
        complex_images: give complex ``x`` (magnitude times a smooth phase).
    """

    def __init__(
        self,
        source: BuiltinBrainVolume,
        split: str,
        pool_size: int | None,
        complex_images: bool,
    ):
        self.source = source
        self.split = split
        self.complex_images = bool(complex_images)
        slab_shape = _slab(split).shape
        shape = source.patch_shape
        if any(p > n for p, n in zip(shape, slab_shape, strict=True)):
            raise UserError(
                f"BuiltinBrainVolume: patch_size {list(shape)} does not fit in the {split} slab "
                f"of the template ({' x '.join(map(str, slab_shape))}, z x y x x)"
            )
        self.grid = tuple(n - p + 1 for n, p in zip(slab_shape, shape, strict=True))
        self.origins = admissible_origins(split, shape, source.min_foreground)
        if len(self.origins) == 0:
            raise UserError(
                f"BuiltinBrainVolume: no {list(shape)} patch of the {split} slab has "
                f"{source.min_foreground:.0%} head voxels; lower patch_size or min_foreground"
            )
        self.fixed: np.ndarray | None = None  # fixed flat origins (validation, training pool)
        if split == "val":
            count = source.val_patches_per_volume or DEFAULT_PATCHES_PER_VOLUME["val"]
            self.fixed = self._choose(count, _STREAM_VAL, "val_patches_per_volume")
            self.count = count
        elif pool_size is not None:
            self.fixed = self._choose(pool_size, _STREAM_POOL, "data.train_size")
            self.count = pool_size
        else:
            self.count = source.patches_per_volume or DEFAULT_PATCHES_PER_VOLUME["train"]

    def _choose(self, count: int, stream: int, name: str) -> np.ndarray:
        """``count`` distinct admissible positions, a nested subset fixed by the seed."""
        if count > len(self.origins):
            raise UserError(
                f"BuiltinBrainVolume: {name} is {count}, more than the {len(self.origins)} "
                f"admissible {self.split} patch positions"
            )
        generator = seeded_generator(self.source.seed, stream)
        return self.origins[nested_subset(len(self.origins), count, generator)]

    def __len__(self) -> int:
        return self.count

    def read(self, index: int) -> tuple[dict, torch.Generator]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {int(index)} out of range for {len(self)} patches")
        training = self.split == "train"
        generator = split_generator(self.split, index, self.source.seed, _STREAM_VAL)
        position = int(index) % len(self)
        if self.fixed is not None:
            flat = int(self.fixed[position])
        else:
            choice = torch.randint(0, len(self.origins), (), generator=generator)
            flat = int(self.origins[int(choice)])
        front, top, left = np.unravel_index(flat, self.grid)
        start = SPLIT_SLABS[self.split][0]
        d, h, w = self.source.patch_shape
        volume = load_template_slices()
        crop = volume[start + front : start + front + d, top : top + h, left : left + w]
        magnitude = torch.tensor(crop)  # a copy of the cached template
        max_value = 1.0
        if training:  # left-right flip and intensity scale, as the 2D slices
            magnitude, max_value = flip_and_scale(magnitude, generator)
        if self.complex_images:
            phase = smooth_phase_3d(tuple(magnitude.shape), generator, self.source.max_phase)
            x = torch.polar(magnitude, phase)[None]
        else:
            x = magnitude[None]
        item = {
            "x": x,
            "target": magnitude[None],
            "max_value": torch.tensor(max_value),
            "volume_id": torch.tensor(position),
            "slice_num": torch.tensor(0),
            "fname": f"mni152_t1_{self.split}_{position:05d}",
        }
        return item, generator
