"""SimulationDataModule: any ground-truth source, measured by any physics, from the config."""

from __future__ import annotations

import torch

from deepinv_lab.data.datamodule import TrainValDataModule, check_batch_size
from deepinv_lab.data.physics.base import Physics
from deepinv_lab.data.simulation import (
    SIMULATE_ON,
    SimulatedDataset,
    SimulationCollate,
    simulate_batch,
)
from deepinv_lab.data.sources.base import Source
from deepinv_lab.errors import UserError
from deepinv_lab.systems.base import System


class SimulationDataModule(TrainValDataModule):
    """Training data simulated from a ground-truth source by a physics, both config blocks::

        "data": {"class_path": "deepinv_lab.data.SimulationDataModule", "init_args": {
            "source": {"class_path": "deepinv_lab.data.sources.BuiltinBrain",
                       "init_args": {"downsample": 2}},
            "physics": {"class_path": "deepinv_lab.data.physics.NonCartesianMRIPhysics",
                        "init_args": {"trajectory": {"class_path": "...RadialTrajectory",
                                                     "init_args": {"num_spokes": 48}},
                                      "noise": {"class_path": "...Gaussian",
                                                "init_args": {"sigma": 0.002}}}}}}

    Args:
        source: where the ground truth comes from (:mod:`deepinv_lab.data.sources`).
        physics: how it is measured (:mod:`deepinv_lab.data.physics`).
        batch_size: items per batch.
        num_workers: DataLoader worker processes (0 = load in the main process).
        train_size: limit the training set (the source's unit: slices, patches); None = all.
        simulate_on: ``"workers"`` (measure where items are read) or ``"device"`` (measure whole
            batches on the training device, e.g. a GPU's NUFFTs).
        pin_memory: pin batches for faster host-to-GPU copies.

    The validation set doubles as the test and predict set. Batches: ``y``, ``system``,
    ``target``, ``max_value``, ``volume_id``, ``slice_num``, ``fname`` and the physics' drawn
    parameters (``mask``, ``coil_maps``, ``sigma``, ...).
    """

    def __init__(
        self,
        source: Source,
        physics: Physics,
        batch_size: int = 1,
        num_workers: int = 0,
        train_size: int | None = None,
        simulate_on: str = "workers",
        pin_memory: bool = False,
    ):
        super().__init__()
        check_batch_size(batch_size)
        if simulate_on not in SIMULATE_ON:
            raise UserError(
                f"data.simulate_on must be one of {list(SIMULATE_ON)}, got {simulate_on!r}"
            )
        if not isinstance(source, Source):
            raise UserError(
                f"data.source must be a ground-truth source (deepinv_lab.data.sources), got "
                f"{type(source).__name__}"
            )
        if not isinstance(physics, Physics):
            raise UserError(
                f"data.physics must be a physics block (deepinv_lab.data.physics), got "
                f"{type(physics).__name__}"
            )
        if physics.complex_images and not source.gives_complex:
            raise UserError(
                f"data.physics {physics.describe()} measures complex images, and data.source "
                f"{source.describe()} gives real ones: use the source BuiltinBrain"
            )
        source.check_batch_size(batch_size)
        self.source = source
        self.physics = physics
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.simulate_on = simulate_on
        self.pin_memory = pin_memory
        self.collate_fn = SimulationCollate(physics)
        complex_images = physics.complex_images
        # Built now so that bad arguments fail at start-up, not after the first epoch.
        self.val_set = self._dataset("val", None, complex_images)
        self.train_set = self._dataset("train", train_size, complex_images)
        self._check_physics()

    def _dataset(self, split: str, train_size: int | None, complex_images: bool):
        items = self.source.split(split, train_size, complex_images)
        if len(items) == 0:
            raise UserError(
                f"data.source {self.source.describe()} has no {split} images; check its folder "
                "or sizes"
            )
        return SimulatedDataset(items, self.physics, self.simulate_on)

    def example_batch(self) -> dict:
        """The first validation item, measured, as a batch of one (start-up checks)."""
        item = SimulatedDataset(self.val_set.items, self.physics, "workers")[0]
        return self.collate_fn([item])

    def _check_physics(self) -> None:
        """Measure one validation item: a mask, trajectory or matrix that does not fit the
        source's images fails here, with both blocks named."""
        try:
            self.example_batch()
        except (UserError, ValueError) as error:
            shape = tuple(self.val_set.items.read(0)[0]["x"].shape)
            raise UserError(
                f"data.physics {self.physics.describe()} cannot measure the images of "
                f"data.source {self.source.describe()} (shape {shape}): {error}"
            ) from error

    def example_system(self) -> tuple[System, torch.Tensor]:
        """The System and measurements ``y`` of one validation item (batch of one), for the
        Recon's start-up check (:meth:`~deepinv_lab.recons.base.Recon.check_system`)."""
        batch = self.example_batch()
        return batch["system"], batch["y"]

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        if "x" in batch and "y" not in batch:
            return simulate_batch(batch, self.physics)
        return batch
