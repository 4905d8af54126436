"""The fastMRI dataset: one item per slice of a folder of HDF5 volumes (file layout:
:mod:`deepinv_lab.data.fastmri.layout`).

:class:`FastMRISliceDataset` indexes a folder of such files once (reading only headers and
shapes; the index is cached, :func:`~deepinv_lab.data.fastmri.index.default_cache_file`), and
each item reads one slice. Measurements are simulated as fastMRI's ``VarNetDataTransform`` does
(:class:`~deepinv_lab.data.fastmri.transform.FastMRISliceTransform`): a column mask (from
:mod:`deepinv_lab.systems.sampling`, bit-identical to fastMRI's) with the unacquired columns
zeroed multiplies the fully sampled k-space. Validation and test masks are seeded with
``tuple(map(ord, fname))`` as in fastMRI, so they are fixed per volume and equal fastMRI's;
training masks are drawn afresh at every read, reproducibly given the project's samplers
(:func:`deepinv_lab.data.samplers.item_generator`).

Errors name the file (and slice): a file that is not readable HDF5, a missing dataset, an
unparsable header fail when the dataset is built; a file that breaks after indexing fails in the
DataLoader worker with a :class:`~deepinv_lab.data.fastmri.layout.FastMRIDataError` naming file
and slice. Files are only ever opened read-only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import torch
from torch.utils.data import Dataset

from deepinv_lab.data.fastmri.index import default_cache_file, index_volumes, list_h5_files
from deepinv_lab.data.fastmri.layout import CHALLENGES, SPLITS, TARGET_KEYS, FastMRIDataError
from deepinv_lab.data.fastmri.maps import MapsCache, estimate_item_maps
from deepinv_lab.data.fastmri.transform import FastMRISliceTransform
from deepinv_lab.data.physics.draws import CoilCompression, EspiritEstimate
from deepinv_lab.data.samplers import item_generator
from deepinv_lab.data.subsets import nested_subset
from deepinv_lab.errors import UserError
from deepinv_lab.systems.sampling import create_mask_for_mask_type


def _check_rate(name: str, value: float | None) -> None:
    if value is not None and not 0 < value <= 1:
        raise UserError(f"{name} must be in (0, 1], got {value}")


class FastMRISliceDataset(Dataset):
    """Slices of fastMRI HDF5 volumes, with simulated (or, for test files, stored) masks.

    Args:
        root: a folder of ``.h5`` volumes (e.g. ``knee_multicoil_val``), or a list of files.
        challenge: ``"multicoil"`` (target ``reconstruction_rss``) or ``"singlecoil"``
            (``reconstruction_esc``).
        split: ``"train"`` (a fresh mask at every read), ``"val"`` or ``"test"`` (the mask of a
            volume seeded with ``tuple(map(ord, fname))``, fastMRI's). ``"test"`` alone accepts
            files without a target (items then have no ``target``/``max_value``).
        mask_type, center_fractions, accelerations, allow_any_combination: the mask function,
            :func:`~deepinv_lab.systems.sampling.create_mask_for_mask_type`. Files with a stored
            ``mask`` (fastMRI test sets) use it instead.
        acquisitions: keep only volumes whose ``acquisition`` attribute is in the list (e.g.
            ``["CORPD_FBK"]``); None keeps all.
        sample_rate: keep this fraction of the slices, ``round(rate * slices)``.
        volume_sample_rate: keep this fraction of the volumes (all their slices).
        train_size: keep exactly this many slices or volumes (``train_size_unit``); an error
            names both numbers if fewer are available.
        train_size_unit: ``"slices"`` or ``"volumes"``.
        seed: seeds which slices/volumes the three options above keep: the first ones of a
            permutation seeded by ``seed`` (:func:`~deepinv_lab.data.subsets.nested_subset`),
            so subsets are reproducible and nested (a larger ``train_size`` contains the
            smaller). At most one of the three may be set.
        crop_size: center-crop targets to ``(h, w)``; None keeps the stored ``(rh, rw)``.
        use_dataset_cache: cache the index (header, shapes, attributes of every file) in
            ``cache_file``; entries are invalidated when a file's mtime or size changes.
        cache_file: the cache's path; None:
            :func:`~deepinv_lab.data.fastmri.index.default_cache_file` of ``root`` (in
            ``~/.cache/deepinv_lab``, or ``$DEEPINV_LAB_CACHE_DIR``), never in the data folder.
        compress_coils: multicoil only: compress each item's measured k-space to fewer virtual
            coils (:class:`~deepinv_lab.data.physics.CoilCompression`) before anything else
            sees it; the target stays the file's.
        estimate_maps: multicoil only: estimate each item's coil maps ``coil_maps`` from its
            measured ACS columns (:class:`~deepinv_lab.data.physics.EspiritEstimate`), so that
            batches carry ``MultiCoilMRI(maps, mask)``; None: no maps.
        maps_cache_dir: keep the estimated maps in this folder
            (:class:`~deepinv_lab.data.fastmri.maps.MapsCache`); None: estimate at every read.

    Items are dicts: ``y`` masked k-space complex64 ``(coils, H, W)`` (``(1, H, W)``
    singlecoil), ``mask`` float32 ``(1, 1, W)``, ``target`` float32 ``(1, rh, rw)``,
    ``max_value`` (the volume's ``max`` attribute, SSIM data range), ``num_low_frequencies``,
    ``slice_num``, ``volume_id`` (index of the file in :attr:`files`), ``fname`` (e.g.
    ``"file1000.h5"``) and ``acquisition``. Batch them with
    :func:`~deepinv_lab.data.fastmri.collate.collate_fastmri`.

    Attributes:
        files: the sorted files found (before filtering); ``volume_id`` indexes it.
        volumes: their :class:`~deepinv_lab.data.fastmri.volumes.VolumeInfo`.
        samples: ``(volume_id, slice_num)`` of every item.
    """

    def __init__(
        self,
        root: str | Path | Sequence[str | Path],
        challenge: str = "multicoil",
        split: str = "train",
        mask_type: str = "random",
        center_fractions: Sequence[float] = (0.08,),
        accelerations: Sequence[float] = (4,),
        allow_any_combination: bool = False,
        acquisitions: Sequence[str] | None = None,
        sample_rate: float | None = None,
        volume_sample_rate: float | None = None,
        train_size: int | None = None,
        train_size_unit: str = "slices",
        seed: int = 0,
        crop_size: Sequence[int] | None = None,
        use_dataset_cache: bool = True,
        cache_file: str | Path | None = None,
        estimate_maps: EspiritEstimate | None = None,
        maps_cache_dir: str | Path | None = None,
        compress_coils: CoilCompression | None = None,
    ):
        if challenge not in CHALLENGES:
            raise UserError(f"challenge must be one of {CHALLENGES}, got {challenge!r}")
        if split not in SPLITS:
            raise UserError(f"split must be one of {SPLITS}, got {split!r}")
        if train_size_unit not in ("slices", "volumes"):
            raise UserError(
                f"train_size_unit must be 'slices' or 'volumes', got {train_size_unit!r}"
            )
        chosen = [
            name
            for name, value in (
                ("sample_rate", sample_rate),
                ("volume_sample_rate", volume_sample_rate),
                ("train_size", train_size),
            )
            if value is not None
        ]
        if len(chosen) > 1:
            raise UserError(
                f"set at most one of sample_rate, volume_sample_rate and train_size, got {chosen}"
            )
        _check_rate("sample_rate", sample_rate)
        _check_rate("volume_sample_rate", volume_sample_rate)
        if train_size is not None and (isinstance(train_size, bool) or int(train_size) < 1):
            raise UserError(f"train_size must be an integer >= 1, got {train_size!r}")
        if crop_size is not None and len(crop_size) != 2:
            raise UserError(f"crop_size must be (h, w), got {crop_size!r}")
        for name, value in (("estimate_maps", estimate_maps), ("compress_coils", compress_coils)):
            if value is not None and challenge != "multicoil":
                raise UserError(f"{name} needs multicoil data, and challenge is 'singlecoil'")
        self.estimate_maps = estimate_maps
        self.compress_coils = compress_coils
        self.maps_cache = None if maps_cache_dir is None else MapsCache(maps_cache_dir)
        self.challenge = challenge
        self.split = split
        self.target_key = TARGET_KEYS[challenge]
        self.seed = int(seed)
        mask_func = create_mask_for_mask_type(
            mask_type, center_fractions, accelerations, allow_any_combination
        )
        self.transform = FastMRISliceTransform(mask_func, crop_size)

        self.files = list_h5_files(root)
        if use_dataset_cache and cache_file is None:
            cache_file = default_cache_file(root)
        self.cache_file = Path(cache_file) if use_dataset_cache else None
        self.volumes = index_volumes(self.files, self.cache_file)
        self._check_volumes(crop_size)

        kept = list(range(len(self.volumes)))
        if acquisitions is not None:
            wanted = set(acquisitions)
            kept = [v for v in kept if self.volumes[v].acquisition in wanted]
            if not kept:
                found = sorted({info.acquisition for info in self.volumes})
                raise UserError(
                    f"acquisitions: no volume of {self._describe(root)} has an acquisition in "
                    f"{sorted(wanted)}; the acquisitions found are {found}"
                )
        self.samples: list[tuple[int, int]] = [
            (v, s) for v in kept for s in range(self.volumes[v].num_slices)
        ]
        self.samples = self._subset(
            root, kept, sample_rate, volume_sample_rate, train_size, train_size_unit
        )

    # --- construction helpers

    @staticmethod
    def _describe(root: str | Path | Sequence[str | Path]) -> str:
        return str(root) if isinstance(root, (str, Path)) else f"the {len(root)} files given"

    def _check_volumes(self, crop_size: Sequence[int] | None) -> None:
        coil_dims = 3 if self.challenge == "multicoil" else 2
        self.has_target = all(self.target_key in info.target_shapes for info in self.volumes)
        for info in self.volumes:
            if len(info.kspace_shape) != coil_dims:
                other = "singlecoil" if self.challenge == "multicoil" else "multicoil"
                raise FastMRIDataError(
                    f"{info.path}: k-space slices of shape {info.kspace_shape} are {other} data, "
                    f"but challenge={self.challenge!r}; set challenge={other!r}"
                )
            if self.split != "test":
                if self.target_key not in info.target_shapes:
                    raise FastMRIDataError(
                        f"{info.path}: no dataset {self.target_key!r} (the {self.challenge} "
                        f"target; the file has {list(info.datasets)}); test-set files have no "
                        "target: use split='test'"
                    )
                if "max" not in info.attrs:
                    raise FastMRIDataError(
                        f"{info.path}: no attribute 'max' (the SSIM data range), found "
                        f"{sorted(info.attrs)}"
                    )
            if self.has_target and crop_size is not None:
                shape = info.target_shapes[self.target_key]
                if not (crop_size[0] <= shape[0] and crop_size[1] <= shape[1]):
                    raise UserError(
                        f"crop_size {tuple(crop_size)} is larger than the target {shape} of "
                        f"{info.path}"
                    )

    def _subset(
        self,
        root: str | Path | Sequence[str | Path],
        kept: list[int],
        sample_rate: float | None,
        volume_sample_rate: float | None,
        train_size: int | None,
        unit: str,
    ) -> list[tuple[int, int]]:
        by_volume = volume_sample_rate is not None or (train_size is not None and unit == "volumes")
        available = len(kept) if by_volume else len(self.samples)
        if sample_rate is not None:
            count = round(sample_rate * available)
            what = f"sample_rate={sample_rate} of {available} slices"
        elif volume_sample_rate is not None:
            count = round(volume_sample_rate * available)
            what = f"volume_sample_rate={volume_sample_rate} of {available} volumes"
        elif train_size is not None:
            count = int(train_size)
            if count > available:
                raise UserError(
                    f"train_size={count} {unit} requested, but only {available} {unit} are "
                    f"available in {self._describe(root)} (after the acquisitions filter)"
                )
            what = ""
        else:
            return self.samples
        if count < 1:
            raise UserError(f"{what} keeps no data; use a larger rate")
        chosen = nested_subset(available, count, torch.Generator().manual_seed(self.seed))
        if by_volume:
            volumes = {kept[i] for i in chosen}
            return [sample for sample in self.samples if sample[0] in volumes]
        return [self.samples[i] for i in chosen]

    # --- access

    def __len__(self) -> int:
        return len(self.samples)

    def bucket_keys(self) -> list[tuple[int, ...]]:
        """One shape key per item, from the index (no file is read): ``(coils, H, W)`` of ``y``,
        followed by the target's ``(h, w)`` when items have targets. Items of one key batch."""
        keys = []
        for volume_id, _ in self.samples:
            info = self.volumes[volume_id]
            shape = info.kspace_shape if len(info.kspace_shape) == 3 else (1, *info.kspace_shape)
            if self.has_target:
                target = self.transform.crop_size or info.target_shapes[self.target_key]
                shape = (*shape, *target)
            keys.append(tuple(shape))
        return keys

    def mask_seed(self, index: int, fname: str) -> int | tuple[int, ...]:
        """The mask seed of an item: fastMRI's ``tuple(map(ord, fname))`` for val/test (fixed per
        volume); for train a fresh draw from :func:`~deepinv_lab.data.samplers.item_generator`."""
        if self.split != "train":
            return tuple(map(ord, fname))
        generator = item_generator(index)
        return int(torch.randint(0, 2**31 - 1, (), generator=generator))

    def __getitem__(self, index: int) -> dict[str, Any]:
        volume_id, slice_num = self.samples[int(index)]
        info = self.volumes[volume_id]
        fname = Path(info.path).name
        with_target = self.has_target
        try:
            with h5py.File(info.path, "r") as f:
                kspace = f["kspace"][slice_num]
                target = f[self.target_key][slice_num] if with_target else None
                stored_mask = f["mask"][()] if info.has_mask else None
        except Exception as error:
            raise FastMRIDataError(
                f"{info.path}, slice {slice_num}: reading failed ({type(error).__name__}: "
                f"{error}); the file changed or was corrupted after it was indexed -- "
                "re-download it or remove it from the data"
            ) from error
        item = self.transform(kspace, target, stored_mask, info, self.mask_seed(index, fname))
        if self.compress_coils is not None:
            if item["y"].shape[0] < self.compress_coils.num_coils:
                raise FastMRIDataError(
                    f"{info.path}: {item['y'].shape[0]} coils, fewer than the "
                    f"{self.compress_coils.num_coils} virtual coils of compress_coils"
                )
            item["y"] = self.compress_coils(item["y"][None])[0]
        if with_target:
            item["max_value"] = torch.tensor(float(info.attrs["max"]), dtype=torch.float32)
        # The size reconstructions are cropped to when there is no target (fastMRI test sets):
        # the crop size, else the header's reconstruction matrix (within the k-space matrix).
        if "target" in item:
            crop = tuple(item["target"].shape[-2:])
        elif self.transform.crop_size is not None:
            crop = self.transform.crop_size
        else:
            height, width = item["y"].shape[-2:]
            crop = (min(info.recon_size[0], height), min(info.recon_size[1], width))
        item["crop_size"] = torch.tensor(crop)
        item.update(
            slice_num=torch.tensor(slice_num),
            volume_id=torch.tensor(volume_id),
            fname=fname,
            acquisition=info.acquisition,
        )
        if self.estimate_maps is not None:
            item["coil_maps"] = estimate_item_maps(
                item,
                self.estimate_maps,
                info.path,
                slice_num,
                self.maps_cache,
                f"{self.compress_coils}",
            )
        return item
