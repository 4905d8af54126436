"""Datasets, batching and LightningDataModules.

The Lightning-based DataModules are imported lazily, so ``deepinv_lab.data`` stays light.
"""

from deepinv_lab.data.builtin import SimulatedBrainMRI
from deepinv_lab.data.collate import batch_to_device, collate_multicoil
from deepinv_lab.data.images import (
    BuiltinDenoising,
    BuiltinSuperResolution,
    collate_denoising,
    load_builtin_images,
)

_DATAMODULES = {
    "SimulatedBrainMRIDataModule": "deepinv_lab.data.datamodule",
    "BuiltinDenoisingDataModule": "deepinv_lab.data.image_datamodules",
    "BuiltinSuperResolutionDataModule": "deepinv_lab.data.image_datamodules",
    "BuiltinMicroCTDataModule": "deepinv_lab.data.image_datamodules",
    "FastMRIDataModule": "deepinv_lab.data.fastmri_datamodule",
    "ImageFolderDenoisingDataModule": "deepinv_lab.data.folder_datamodules",
    "PairedSRDataModule": "deepinv_lab.data.folder_datamodules",
    # not a DataModule, but imports h5py: lazy too
    "FastMRISliceDataset": "deepinv_lab.data.fastmri",
    "collate_fastmri": "deepinv_lab.data.fastmri",
}

__all__ = [
    "BuiltinDenoising",
    "BuiltinSuperResolution",
    "SimulatedBrainMRI",
    *_DATAMODULES,
    "batch_to_device",
    "collate_denoising",
    "collate_multicoil",
    "load_builtin_images",
]


def __getattr__(name: str):
    if name in _DATAMODULES:
        import importlib

        return getattr(importlib.import_module(_DATAMODULES[name]), name)
    raise AttributeError(f"module 'deepinv_lab.data' has no attribute {name!r}")
