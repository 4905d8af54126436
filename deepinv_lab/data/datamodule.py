"""LightningDataModules."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import pytorch_lightning as pl
from torch.utils.data import DataLoader, Dataset

from deepinv_lab.data.builtin import SimulatedBrainMRI
from deepinv_lab.data.collate import collate_multicoil
from deepinv_lab.data.samplers import EpochSampler, ResumableDataLoader, SeededSubset
from deepinv_lab.data.subsets import nested_subset
from deepinv_lab.errors import UserError

#: seeds the fixed order in which ``train_size`` takes the built-in training slices
TRAIN_ORDER_SEED = 0


def check_batch_size(batch_size: int) -> None:
    """Raise a :class:`~deepinv_lab.errors.UserError` unless ``data.batch_size`` is >= 1."""
    if batch_size < 1:
        raise UserError(f"data.batch_size must be >= 1, got {batch_size}")


class TrainValDataModule(pl.LightningDataModule):
    """The loaders of a DataModule with a training, a validation and an optional test set (the
    validation set doubles as the test set when there is none, and as the predict set).

    Subclasses set ``train_set``, ``val_set`` (optionally ``test_set``), ``collate_fn``,
    ``batch_size`` and ``num_workers``, and may set ``pin_memory`` and ``seed``.

    Every loader is a :class:`~deepinv_lab.data.samplers.ResumableDataLoader` over an
    :class:`~deepinv_lab.data.samplers.EpochSampler`: training order and random draws depend only
    on the seed and the epoch (the same with 1 or N processes, with or without workers), the
    epoch is sharded over DDP processes, a run resumed from a mid-epoch checkpoint continues with
    the next batch, and datasets with a ``bucket_keys()`` method (one shape key per item) are
    batched by shape, so that ``batch_size > 1`` works on data of mixed shapes. ``seed`` None
    takes the seed of ``seed_everything`` (``PL_GLOBAL_SEED``), else 0.
    """

    train_set: Dataset
    val_set: Dataset
    test_set: Dataset | None = None
    collate_fn: Callable
    batch_size: int
    num_workers: int
    pin_memory: bool = False
    seed: int | None = None

    def _seed(self) -> int:
        if self.seed is not None:
            return int(self.seed)
        return int(os.environ.get("PL_GLOBAL_SEED", 0))

    def _loader(self, dataset: Dataset, shuffle: bool) -> DataLoader:
        bucket_keys = getattr(dataset, "bucket_keys", None)
        keys = bucket_keys() if callable(bucket_keys) and self.batch_size > 1 else None
        sampler = EpochSampler(
            dataset,
            shuffle=shuffle,
            seed=self._seed(),
            batch_size=self.batch_size,
            bucket_keys=keys,
        )
        return ResumableDataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            collate_fn=self.collate_fn,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        test_set = self.test_set if self.test_set is not None else self.val_set
        return self._loader(test_set, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        test_set = self.test_set if self.test_set is not None else self.val_set
        return self._loader(test_set, shuffle=False)


class SimulatedBrainMRIDataModule(TrainValDataModule):
    """Loaders over the built-in data, :class:`~deepinv_lab.data.builtin.SimulatedBrainMRI`.

    Args:
        batch_size: slices per batch.
        num_workers: DataLoader worker processes (0 = load in the main process).
        train_size: use only ``train_size`` training slices (None = all): the first of a fixed
            random order of the slices, so that smaller training sets are subsets of larger
            ones and every size spans the whole head (the first slices in anatomical order
            would all come from its bottom).
        **dataset_args: the arguments of :class:`SimulatedBrainMRI` but ``split`` (``image_size``,
            ``downsample``, ``num_coils``, mask, noise, phase, ``seed``); configs list them under
            ``data.init_args`` like the others, and ``--print_config`` shows their defaults.

    The validation set doubles as the test set (the template is one volume).
    """

    def __init__(
        self,
        batch_size: int = 1,
        num_workers: int = 0,
        train_size: int | None = None,
        **dataset_args,
    ):
        super().__init__()
        check_batch_size(batch_size)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.train_size = train_size
        self.collate_fn = collate_multicoil
        # Built now so that bad arguments fail at start-up, not after the first epoch.
        self.val_set = SimulatedBrainMRI("val", **dataset_args)
        self.train_set = self._train_set(SimulatedBrainMRI("train", **dataset_args))

    def _train_set(self, train_set: SimulatedBrainMRI) -> Dataset:
        if self.train_size is None:
            return train_set
        if not 1 <= self.train_size <= len(train_set):
            raise UserError(
                f"data.train_size must be between 1 and {len(train_set)} (the built-in training "
                f"slices), got {self.train_size}"
            )
        rng = np.random.default_rng(TRAIN_ORDER_SEED)
        return SeededSubset(train_set, nested_subset(len(train_set), self.train_size, rng))
