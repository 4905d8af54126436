"""Datasets, batching and LightningDataModules.

Simulated data is a ground-truth source (:mod:`deepinv_lab.data.sources`) measured by a physics
(:mod:`deepinv_lab.data.physics`), loaded by
:class:`~deepinv_lab.data.simulation_datamodule.SimulationDataModule`; the built-in DataModules
are presets of it. The Lightning-based DataModules are imported lazily, so ``deepinv_lab.data``
stays light.
"""

from deepinv_lab.data.collate import batch_to_device, collate_multicoil
from deepinv_lab.data.images import load_builtin_images

_DATAMODULES = {
    "SimulationDataModule": "deepinv_lab.data.simulation_datamodule",
    "SimulatedBrainMRIDataModule": "deepinv_lab.data.presets",
    "BuiltinDenoisingDataModule": "deepinv_lab.data.presets",
    "BuiltinSuperResolutionDataModule": "deepinv_lab.data.presets",
    "BuiltinMicroCTDataModule": "deepinv_lab.data.presets",
    "FastMRIDataModule": "deepinv_lab.data.fastmri_datamodule",
    "ImageFolderDenoisingDataModule": "deepinv_lab.data.folder_datamodules",
    "PairedSRDataModule": "deepinv_lab.data.folder_datamodules",
    "PairedVolumeSRDataModule": "deepinv_lab.data.volume_datamodules",
    # not a DataModule, but imports h5py: lazy too
    "FastMRISliceDataset": "deepinv_lab.data.fastmri",
    "collate_fastmri": "deepinv_lab.data.fastmri",
}

__all__ = [*_DATAMODULES, "batch_to_device", "collate_multicoil", "load_builtin_images"]


def __getattr__(name: str):
    if name in _DATAMODULES:
        import importlib

        return getattr(importlib.import_module(_DATAMODULES[name]), name)
    raise AttributeError(f"module 'deepinv_lab.data' has no attribute {name!r}")
