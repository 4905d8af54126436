"""Ground-truth sources: where the clean images of simulated data come from.

A :class:`Source` is a config block (``data.init_args.source``). Its :meth:`Source.split` gives
a :class:`SourceSplit` per split: a dataset-like object whose :meth:`SourceSplit.read` returns one
clean item and the generator the item's random draws continue with, so that the physics draws
its parameters from the same stream (:mod:`deepinv_lab.data.simulation`).

Items hold ``x`` (the ground truth the physics measures: real ``(C, H, W)``, or complex
``(1, H, W)`` for MRI physics), ``target`` (what the reconstruction is scored against: ``x``, or
``|x|`` for complex ``x``), ``max_value`` (the SSIM/PSNR data range), ``volume_id``,
``slice_num`` and ``fname``.
"""

from __future__ import annotations

import torch

from deepinv_lab.data.samplers import SeededIndex, item_generator
from deepinv_lab.data.seeding import seeded_generator
from deepinv_lab.errors import UserError

SPLITS = ("train", "val")


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise UserError(f"split must be one of {SPLITS}, got {split!r}")


def split_generator(split: str, index: int, seed: int, stream: int) -> torch.Generator:
    """The generator of an item: fresh per epoch for training (:func:`item_generator`), fixed by
    ``seed`` and the index for validation."""
    if split == "train":
        return item_generator(index)
    return seeded_generator(seed, stream, int(index))


class SourceSplit:
    """The clean items of one split (module docstring). Subclasses implement ``__len__`` and
    :meth:`read`; datasets of mixed image sizes also give ``bucket_keys()``."""

    def __len__(self) -> int:  # pragma: no cover - interface
        raise NotImplementedError

    def read(self, index: int) -> tuple[dict, torch.Generator]:  # pragma: no cover - interface
        raise NotImplementedError


class Source:
    """Base class of the ground-truth sources (module docstring).

    Subclasses implement :meth:`split`; ``complex_images`` says whether they can give complex
    ground truth, which MRI physics measure.
    """

    #: Whether :meth:`split` can give complex images (``complex_images=True``).
    gives_complex: bool = False

    def split(
        self, split: str, train_size: int | None = None, complex_images: bool = False
    ) -> SourceSplit:
        """The items of ``split`` (``"train"`` or ``"val"``); ``train_size`` limits the
        training set (its meaning is the source's: slices, patches, images); ``complex_images``
        asks for complex ground truth."""
        raise NotImplementedError(f"{type(self).__name__} must implement split")

    def describe(self) -> str:
        return type(self).__name__

    def check_batch_size(self, batch_size: int) -> None:
        """Refuse a ``batch_size`` the items cannot be batched with (default: any)."""


class SubsetSplit(SourceSplit):
    """The items ``indices`` of another split (a nested training subset)."""

    def __init__(self, inner: SourceSplit, indices: list[int]):
        self.inner = inner
        self.indices = list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def read(self, index: int) -> tuple[dict, torch.Generator]:
        inner = self.indices[index]
        seed = getattr(index, "seed", None)  # a SeededIndex keeps its seed
        return self.inner.read(inner if seed is None else SeededIndex(inner, seed))
