"""Users' files in and out: raw k-space (ISMRMRD, fastMRI HDF5) as :class:`RawVolume`, slice
geometry (:class:`SliceGeometry`), and the output formats of ``deepinv-lab reconstruct``."""

from deepinv_lab.io.geometry import SliceGeometry
from deepinv_lab.io.raw import RawVolume

__all__ = ["RawVolume", "SliceGeometry"]
