"""Ground-truth sources of simulated data, config blocks of ``data.init_args.source``
(:class:`~deepinv_lab.data.simulation_datamodule.SimulationDataModule`)."""

from deepinv_lab.data.sources.base import Source, SourceSplit
from deepinv_lab.data.sources.brain import BuiltinBrain
from deepinv_lab.data.sources.brain_volume import BuiltinBrainVolume
from deepinv_lab.data.sources.fastmri import FastMRICoilImages
from deepinv_lab.data.sources.folder import FolderImages
from deepinv_lab.data.sources.photos import BuiltinMicroCT, BuiltinPhotos

__all__ = [
    "BuiltinBrain",
    "BuiltinBrainVolume",
    "BuiltinMicroCT",
    "BuiltinPhotos",
    "FastMRICoilImages",
    "FolderImages",
    "Source",
    "SourceSplit",
]
