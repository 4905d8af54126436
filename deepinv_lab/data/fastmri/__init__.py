"""The fastMRI data (Zbontar et al., arXiv:1811.08839): one item per slice of the HDF5 volumes.

One module per job:

* :mod:`~deepinv_lab.data.fastmri.layout`: the file layout, its names and
  :class:`FastMRIDataError`;
* :mod:`~deepinv_lab.data.fastmri.header`: the ISMRMRD header (:func:`parse_ismrmrd_header`);
* :mod:`~deepinv_lab.data.fastmri.volumes`: one volume's metadata (:class:`VolumeInfo`,
  :func:`read_volume_info`);
* :mod:`~deepinv_lab.data.fastmri.index`: the files of a folder and their cached index
  (:func:`index_volumes`, :func:`default_cache_file`);
* :mod:`~deepinv_lab.data.fastmri.transform`: a raw slice to item tensors
  (:class:`FastMRISliceTransform`);
* :mod:`~deepinv_lab.data.fastmri.dataset`: the dataset (:class:`FastMRISliceDataset`);
* :mod:`~deepinv_lab.data.fastmri.collate`: batching (:func:`collate_fastmri`).

The LightningDataModule is :class:`~deepinv_lab.data.fastmri_datamodule.FastMRIDataModule`.
"""

from deepinv_lab.data.fastmri.collate import collate_fastmri
from deepinv_lab.data.fastmri.dataset import FastMRISliceDataset
from deepinv_lab.data.fastmri.header import ISMRMRD_NAMESPACE, parse_ismrmrd_header
from deepinv_lab.data.fastmri.index import (
    INDEX_VERSION,
    default_cache_dir,
    default_cache_file,
    index_volumes,
    list_h5_files,
    load_index_cache,
    save_index_cache,
)
from deepinv_lab.data.fastmri.layout import CHALLENGES, SPLITS, TARGET_KEYS, FastMRIDataError
from deepinv_lab.data.fastmri.transform import FastMRISliceTransform
from deepinv_lab.data.fastmri.volumes import VolumeInfo, read_volume_info

__all__ = [
    "CHALLENGES",
    "INDEX_VERSION",
    "ISMRMRD_NAMESPACE",
    "SPLITS",
    "TARGET_KEYS",
    "FastMRIDataError",
    "FastMRISliceDataset",
    "FastMRISliceTransform",
    "VolumeInfo",
    "collate_fastmri",
    "default_cache_dir",
    "default_cache_file",
    "index_volumes",
    "list_h5_files",
    "load_index_cache",
    "parse_ismrmrd_header",
    "read_volume_info",
    "save_index_cache",
]
