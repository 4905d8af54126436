"""The loaders shared by the LightningDataModules."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytorch_lightning as pl
from torch.utils.data import DataLoader, Dataset

from deepinv_lab.data.samplers import EpochSampler, ResumableDataLoader
from deepinv_lab.errors import UserError


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
