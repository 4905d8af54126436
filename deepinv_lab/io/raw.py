"""A raw 2D multi-slice Cartesian acquisition in the fastMRI layout, whatever file it came from
(ISMRMRD, fastMRI HDF5): what ``deepinv-lab convert`` writes and ``deepinv-lab reconstruct``
reconstructs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from deepinv_lab.io.geometry import SliceGeometry


@dataclasses.dataclass
class RawVolume:
    """One volume of multicoil (or single-coil) Cartesian k-space.

    Attributes:
        kspace: ``(S, C, H, W)`` complex64: ``H`` the readout (with its oversampling, as fastMRI
            keeps it), ``W`` the phase encodes; unacquired samples are 0.
        mask: ``(W,)`` float32, 1 on the acquired phase-encode columns (the same in every slice).
        num_low_frequencies: the width of the fully sampled central block of columns (the ACS),
            0 when unknown.
        header: the ISMRMRD XML header (fastMRI files keep it as ``ismrmrd_header``).
        recon_size: ``(h, w)``, the reconstruction matrix: images are centre-cropped to it.
        geometry: where the slices lie (None: unknown, e.g. a fastMRI file).
        name: the stem of the files written for it, e.g. ``scan`` or ``scan_rep1``.
        source: the file it was read from.
        acquisition: the protocol name (fastMRI's ``acquisition`` attribute), may be empty.
        target: ``(S, h, w)`` float32 reference images when the file has them, else None.
    """

    kspace: np.ndarray
    mask: np.ndarray
    num_low_frequencies: int
    header: str
    recon_size: tuple[int, int]
    geometry: SliceGeometry | None
    name: str
    source: Path
    acquisition: str = ""
    target: np.ndarray | None = None

    @property
    def num_slices(self) -> int:
        return int(self.kspace.shape[0])

    @property
    def fully_sampled(self) -> bool:
        return bool(np.all(self.mask > 0))

    @property
    def acceleration(self) -> float:
        """Phase-encode columns over acquired columns."""
        return float(self.mask.size / max(float(np.sum(self.mask > 0)), 1.0))
