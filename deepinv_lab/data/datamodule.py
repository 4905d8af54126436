"""LightningDataModules."""

from __future__ import annotations

import math

import pytorch_lightning as pl
from torch.utils.data import DataLoader, Dataset, Subset

from deepinv_lab.data.builtin import SimulatedBrainMRI
from deepinv_lab.data.collate import collate_multicoil


class SimulatedBrainMRIDataModule(pl.LightningDataModule):
    """Loaders over the built-in data, :class:`~deepinv_lab.data.builtin.SimulatedBrainMRI`.

    Args:
        batch_size: slices per batch.
        num_workers: DataLoader worker processes (0 = load in the main process).
        train_size: use only the first ``train_size`` training slices (None = all).
        image_size, downsample, num_coils, mask_type, center_fractions, accelerations,
        noise_sigma, max_phase, seed: passed to :class:`SimulatedBrainMRI`.

    The validation set doubles as the test set (the template is one volume).
    """

    def __init__(
        self,
        batch_size: int = 1,
        num_workers: int = 0,
        train_size: int | None = None,
        image_size: tuple[int, int] = (224, 192),
        downsample: int = 1,
        num_coils: int = 8,
        mask_type: str = "random",
        center_fractions: tuple[float, ...] = (0.08,),
        accelerations: tuple[int, ...] = (4,),
        noise_sigma: float = 0.002,
        max_phase: float = math.pi / 2,
        seed: int = 0,
    ):
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"data.batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.train_size = train_size
        self.dataset_args = dict(
            image_size=tuple(image_size),
            downsample=downsample,
            num_coils=num_coils,
            mask_type=mask_type,
            center_fractions=tuple(center_fractions),
            accelerations=tuple(accelerations),
            noise_sigma=noise_sigma,
            max_phase=max_phase,
            seed=seed,
        )
        # Build once now so that bad arguments fail at start-up, not after the first epoch.
        self.train_set = self._train_set()
        self.val_set = SimulatedBrainMRI("val", **self.dataset_args)

    def _train_set(self) -> Dataset:
        train_set = SimulatedBrainMRI("train", **self.dataset_args)
        if self.train_size is None:
            return train_set
        if not 1 <= self.train_size <= len(train_set):
            raise ValueError(
                f"data.train_size must be between 1 and {len(train_set)} (the built-in training "
                f"slices), got {self.train_size}"
            )
        return Subset(train_set, range(self.train_size))

    def _loader(self, dataset: Dataset, shuffle: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            collate_fn=collate_multicoil,
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
