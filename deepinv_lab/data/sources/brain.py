"""The built-in brain: axial slices of the MNI152 T1 template (:mod:`deepinv_lab.data.builtin`),
complex with a smooth random phase for MRI physics."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from deepinv_lab.data.builtin import load_template_slices, smooth_phase, split_slices
from deepinv_lab.data.sources.base import (
    Source,
    SourceSplit,
    SubsetSplit,
    check_split,
    split_generator,
)
from deepinv_lab.data.subsets import nested_subset
from deepinv_lab.errors import UserError

#: seeds the fixed order in which ``train_size`` takes the training slices
TRAIN_ORDER_SEED = 0
#: the template's size
TEMPLATE_SHAPE = (233, 197)


def flip_and_scale(
    magnitude: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, float]:
    """The training draws of the built-in brain: a left-right flip (last axis) with probability
    1/2 and an intensity scale uniform in ``[0.75, 1.25]``; returns the image and its data range
    (the scale)."""
    if torch.rand((), generator=generator) < 0.5:
        magnitude = magnitude.flip(-1)
    scale = float(0.75 + 0.5 * torch.rand((), generator=generator))
    return magnitude * scale, scale


class BuiltinBrain(Source):
    """Axial slices of the MNI152 T1 template, the built-in MRI ground truth (no download; see
    :mod:`deepinv_lab.data.builtin` and docs/data.md).

    Training slices are augmented at every read: a left-right flip and an intensity scale in
    ``[0.75, 1.25]``; for MRI physics each slice gets a random smooth phase (a 2nd-order
    polynomial with coefficients up to ``max_phase``). Validation slices are the same at every
    epoch.

    Args:
        image_size: ``(H, W)`` of the centre crop of the 233 x 197 slices, before ``downsample``.
        downsample: integer factor of area averaging after the crop (2 -> 2 mm pixels).
        max_phase: amplitude (radians) of the phase's coefficients.
        seed: seeds the validation items.

    ``train_size`` (of the DataModule) takes the first slices of a fixed random order of the
    training slices, so that smaller training sets are subsets of larger ones and span the head.
    The template is one volume (``volume_id`` 0): metrics are fastMRI's per-volume ones.
    """

    gives_complex = True

    def __init__(
        self,
        image_size: tuple[int, int] = (224, 192),
        downsample: int = 1,
        max_phase: float = math.pi / 2,
        seed: int = 0,
    ):
        image_size = tuple(int(n) for n in image_size)
        if len(image_size) != 2 or not (
            1 <= image_size[0] <= TEMPLATE_SHAPE[0] and 1 <= image_size[1] <= TEMPLATE_SHAPE[1]
        ):
            raise UserError(
                f"BuiltinBrain: image_size must fit in the 233 x 197 template slices, got "
                f"{list(image_size)}"
            )
        if downsample < 1 or image_size[0] % downsample or image_size[1] % downsample:
            raise UserError(
                f"BuiltinBrain: downsample ({downsample}) must be a positive divisor of both "
                f"image_size entries {list(image_size)}"
            )
        self.image_size = image_size
        self.downsample = int(downsample)
        self.max_phase = float(max_phase)
        self.seed = int(seed)

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)`` of the items."""
        return (self.image_size[0] // self.downsample, self.image_size[1] // self.downsample)

    def split(
        self, split: str, train_size: int | None = None, complex_images: bool = False
    ) -> SourceSplit:
        check_split(split)
        items = BrainSlices(self, split, complex_images)
        if train_size is None or split != "train":
            return items
        if isinstance(train_size, bool) or not 1 <= train_size <= len(items):
            raise UserError(
                f"data.train_size must be between 1 and {len(items)} (the built-in training "
                f"slices), got {train_size}"
            )
        order = nested_subset(len(items), train_size, np.random.default_rng(TRAIN_ORDER_SEED))
        return SubsetSplit(items, order)


class BrainSlices(SourceSplit):
    """The slices of one split of :class:`BuiltinBrain`."""

    def __init__(self, source: BuiltinBrain, split: str, complex_images: bool):
        self.source = source
        self.split = split
        self.complex_images = complex_images
        self.slice_indices = split_slices(split)

    def __len__(self) -> int:
        return len(self.slice_indices)

    def _image(self, index: int) -> torch.Tensor:
        """The cropped, downsampled magnitude slice ``(H, W)``."""
        image = torch.from_numpy(load_template_slices()[self.slice_indices[index]])
        height, width = self.source.image_size
        top = (image.shape[0] - height) // 2
        left = (image.shape[1] - width) // 2
        image = image[top : top + height, left : left + width]
        if self.source.downsample > 1:
            image = F.avg_pool2d(image[None, None], self.source.downsample)[0, 0]
        return image

    def read(self, index: int) -> tuple[dict, torch.Generator]:
        training = self.split == "train"
        if training:
            generator = split_generator("train", index, 0, 0)
        else:  # the validation stream of the former SimulatedBrainMRI: data unchanged
            generator = torch.Generator().manual_seed(self.source.seed * 1_000_003 + int(index))
        index = int(index)
        magnitude = self._image(index)
        max_value = 1.0
        if training:
            magnitude, max_value = flip_and_scale(magnitude, generator)
        if self.complex_images:
            phase = smooth_phase(tuple(magnitude.shape), generator, self.source.max_phase)
            x = torch.polar(magnitude, phase)[None]
        else:
            x = magnitude[None]
        item = {
            "x": x,
            "target": magnitude[None],
            "max_value": torch.tensor(max_value),
            "slice_num": torch.tensor(self.slice_indices[index]),
            # the template is one volume: metrics are fastMRI's per-volume ones over its slices
            "volume_id": torch.tensor(0),
            "fname": f"mni152_t1_{self.split}",
        }
        return item, generator
