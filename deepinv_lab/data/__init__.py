"""Datasets, batching and LightningDataModules.

The Lightning-based DataModules are imported lazily, so ``deepinv_lab.data`` stays light.
"""

from deepinv_lab.data.builtin import SimulatedBrainMRI
from deepinv_lab.data.collate import batch_to_device, collate_multicoil

__all__ = [
    "SimulatedBrainMRI",
    "SimulatedBrainMRIDataModule",
    "batch_to_device",
    "collate_multicoil",
]


def __getattr__(name: str):
    if name == "SimulatedBrainMRIDataModule":
        from deepinv_lab.data.datamodule import SimulatedBrainMRIDataModule

        return SimulatedBrainMRIDataModule
    raise AttributeError(f"module 'deepinv_lab.data' has no attribute {name!r}")
