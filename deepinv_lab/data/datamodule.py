"""LightningDataModules."""

from __future__ import annotations

from collections.abc import Callable

import pytorch_lightning as pl
from torch.utils.data import DataLoader, Dataset, Subset

from deepinv_lab.data.builtin import SimulatedBrainMRI
from deepinv_lab.data.collate import collate_multicoil


class TrainValDataModule(pl.LightningDataModule):
    """The loaders of a DataModule with a training and a validation set; the validation set
    doubles as the test and predict set. Subclasses set ``train_set``, ``val_set``,
    ``collate_fn``, ``batch_size`` and ``num_workers``."""

    train_set: Dataset
    val_set: Dataset
    collate_fn: Callable
    batch_size: int
    num_workers: int

    def _loader(self, dataset: Dataset, shuffle: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            collate_fn=self.collate_fn,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)


class SimulatedBrainMRIDataModule(TrainValDataModule):
    """Loaders over the built-in data, :class:`~deepinv_lab.data.builtin.SimulatedBrainMRI`.

    Args:
        batch_size: slices per batch.
        num_workers: DataLoader worker processes (0 = load in the main process).
        train_size: use only the first ``train_size`` training slices (None = all).
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
        if batch_size < 1:
            raise ValueError(f"data.batch_size must be >= 1, got {batch_size}")
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
            raise ValueError(
                f"data.train_size must be between 1 and {len(train_set)} (the built-in training "
                f"slices), got {self.train_size}"
            )
        return Subset(train_set, range(self.train_size))
