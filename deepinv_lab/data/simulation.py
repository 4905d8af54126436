"""Simulated data: a ground-truth source measured by a physics, in DataLoader workers or batched
on the training device.

``simulate_on="workers"``: each item is measured where it is read (:class:`SimulatedDataset`),
and the collate function builds the batch's System (:class:`SimulationCollate`).
``simulate_on="device"``: items carry the clean ``x`` and the drawn parameters; the DataModule
measures the whole batch after Lightning moved it to the device (:func:`simulate_batch`), so a
GPU does the NUFFTs and FFTs instead of the CPU workers.

Either way an item's parameters and noise depend only on the seed, the epoch and its index
(``noise_seed`` seeds its noise on the device), so the two modes give the same data on the CPU,
and the same with 1 or N processes, with or without workers, and after resume.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch.utils.data import Dataset, default_collate

from deepinv_lab.data.physics.base import Params, Physics
from deepinv_lab.data.sources.base import SourceSplit

#: Where measurements are simulated.
SIMULATE_ON = ("workers", "device")


def _batched(params: Params) -> Params:
    return {key: value[None] for key, value in params.items()}


class SimulatedDataset(Dataset):
    """The items of a source split with the physics' draws; measured here with
    ``simulate_on="workers"``.

    Items: the source's keys (``target``, ``max_value``, ``volume_id``, ...), the physics'
    parameters (``mask``, ``coil_maps``, ``sigma``, ``noise_seed``, ...) and either ``y``
    (measured) or ``x`` (to be measured on the device).
    """

    def __init__(self, items: SourceSplit, physics: Physics, simulate_on: str = "workers"):
        self.items = items
        self.physics = physics
        self.simulate_on = simulate_on

    def __len__(self) -> int:
        return len(self.items)

    def bucket_keys(self):
        keys = getattr(self.items, "bucket_keys", None)
        return keys() if callable(keys) else None

    def __getitem__(self, index: int) -> dict:
        item, generator = self.items.read(index)
        params = self.physics.draw(tuple(item["x"].shape), generator)
        if self.simulate_on == "workers":
            y, estimated = self.physics.measure(item.pop("x")[None], _batched(params))
            item["y"] = y[0]
            params.update({key: value[0] for key, value in estimated.items()})
        item.update(params)
        return item


class SimulationCollate:
    """Stacks simulated items and adds the batch's System (``physics.system``) when they are
    measured; device-simulated batches get theirs in :func:`simulate_batch`."""

    def __init__(self, physics: Physics):
        self.physics = physics

    def __call__(self, samples: Sequence[dict]) -> dict:
        shapes = {tuple(sample["x" if "x" in sample else "y"].shape) for sample in samples}
        if len(shapes) > 1:
            raise ValueError(
                f"items of one batch must share a shape, got {sorted(shapes)}; use batch_size 1 "
                "or a source that buckets items by shape"
            )
        batch = default_collate(list(samples))
        if "y" in batch:
            batch["system"] = self.physics.system(batch)
        return batch


def simulate_batch(batch: dict, physics: Physics) -> dict:
    """Measure a device batch in place: ``x`` is replaced by ``y`` and the System is added."""
    x = batch.pop("x")
    y, estimated = physics.measure(x, batch)
    batch.update(estimated)
    batch["y"] = y
    batch["system"] = physics.system(batch).to(y.device)
    return batch
