"""Coil maps of fastMRI slices, estimated from the measured ACS columns only
(:class:`~deepinv_lab.data.physics.EspiritEstimate`), optionally cached outside the data folders.

A slice's maps depend only on its fully sampled k-space inside the calibration block, which lies
within the ACS columns: on the file, the slice, the ACS width and the estimator's parameters, not
on the rest of a (random) mask. That is the cache key, so training items reuse their maps across
epochs and masks of one acceleration.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import torch

from deepinv_lab.data.fastmri.layout import FastMRIDataError
from deepinv_lab.data.physics.draws import EspiritEstimate
from deepinv_lab.errors import UserError
from deepinv_lab.models.sensitivity import acs_window


def acs_width(mask: torch.Tensor, num_low_frequencies: torch.Tensor | int) -> torch.Tensor:
    """The ACS width ``(B,)`` of column masks ``(B, 1, 1, W)``: the given one, or where it is 0
    (a file that does not say), the central run of acquired columns (fastMRI's derivation)."""
    return acs_window(mask.shape[-1], mask, num_low_frequencies).sum((-3, -2, -1))


class MapsCache:
    """Estimated maps on disk, one ``.pt`` file per slice and estimate (module docstring), in
    ``folder`` (never a data folder). Files are written atomically, so concurrent DataLoader
    workers and DDP processes may share the folder."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder).expanduser()

    @staticmethod
    def key(
        path: str, slice_num: int, width: int, estimator: EspiritEstimate, steps: str = ""
    ) -> str:
        """The cache key of a slice's maps; ``steps`` describes the data steps before the
        estimate (e.g. a coil compression)."""
        stat = os.stat(path)
        parameters = (
            estimator.calib_width,
            estimator.threshold,
            estimator.crop,
            estimator.kernel_width,
            estimator.max_iter,
        )
        text = f"{os.path.abspath(path)}|{stat.st_mtime_ns}|{stat.st_size}|{slice_num}|{width}|"
        return hashlib.sha1(f"{text}{parameters}|{steps}".encode()).hexdigest()

    def load(self, key: str) -> torch.Tensor | None:
        path = self.folder / f"{key}.pt"
        if not path.is_file():
            return None
        try:
            return torch.load(path, weights_only=True)
        except (OSError, RuntimeError, EOFError):  # a partial file of a killed run: recompute
            return None

    def save(self, key: str, maps: torch.Tensor) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
        os.close(handle)
        torch.save(maps.contiguous().cpu(), temporary)
        os.replace(temporary, self.folder / f"{key}.pt")


def estimate_item_maps(
    item: dict,
    estimator: EspiritEstimate,
    path: str,
    slice_num: int,
    cache: MapsCache | None = None,
    steps: str = "",
) -> torch.Tensor:
    """The maps ``(coils, H, W)`` of one fastMRI item (``y``, ``mask``,
    ``num_low_frequencies``), from the cache when it has them; ``steps`` names the data steps
    applied to ``y`` before (part of the cache key)."""
    width = int(acs_width(item["mask"][None], item["num_low_frequencies"].reshape(1))[0])
    key = None
    if cache is not None:
        key = MapsCache.key(path, slice_num, width, estimator, steps)
        maps = cache.load(key)
        if maps is not None and maps.shape == item["y"].shape:
            return maps
    where = f"{path}, slice {slice_num}"
    if width < 2:
        raise FastMRIDataError(
            f"{where}: the mask has no fully sampled centre (ACS width {width}), so no coil maps "
            "can be estimated from the measured data"
        )
    try:
        maps = estimator(item["y"][None], torch.tensor([width]))[0]
    except UserError as error:
        raise FastMRIDataError(f"{where}: {error}") from error
    if not bool(torch.isfinite(maps).all()) or not bool(maps.abs().amax() > 0):
        raise FastMRIDataError(
            f"{where}: the estimated coil maps are "
            f"{'empty (all zero)' if torch.isfinite(maps).all() else 'not finite'}; the ACS "
            f"columns ({width}) may hold no signal -- check the slice, or lower "
            f"EspiritEstimate's threshold ({estimator.threshold}) or crop ({estimator.crop})"
        )
    if cache is not None:
        cache.save(key, maps)
    return maps
