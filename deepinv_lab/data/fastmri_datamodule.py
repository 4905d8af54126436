"""The LightningDataModule of the fastMRI data: :class:`FastMRIDataModule`."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import torch

from deepinv_lab.data.datamodule import TrainValDataModule, check_batch_size
from deepinv_lab.data.fastmri import (
    CHALLENGES,
    FastMRISliceDataset,
    collate_fastmri,
    default_cache_file,
)
from deepinv_lab.data.fastmri.collate import fastmri_system
from deepinv_lab.data.fastmri.maps import acs_width
from deepinv_lab.data.physics.draws import CoilCompression, EspiritEstimate
from deepinv_lab.errors import UserError
from deepinv_lab.systems.base import System


def check_outside_data(folder: Path, data_folders: dict[str, Path | None]) -> None:
    """A UserError when ``folder`` (a cache) is inside one of the data folders: they are never
    written."""
    resolved = folder.expanduser().resolve()
    for split, data in data_folders.items():
        if data is not None and resolved.is_relative_to(data.resolve()):
            raise UserError(
                f"data.maps_cache_dir {folder} is inside the {split} data folder {data}; the data "
                "folders are never written: put the cache elsewhere"
            )


def find_split_folder(root: Path, challenge: str, split: str) -> Path | None:
    """``root/{challenge}_{split}`` (e.g. ``multicoil_train``), else the one folder
    ``root/*_{challenge}_{split}`` (as fastMRI distributes them: ``knee_multicoil_train``), else
    None. Several matches of the second form are an error naming them."""
    folder = root / f"{challenge}_{split}"
    if folder.is_dir():
        return folder
    matches = sorted(p for p in root.glob(f"*_{challenge}_{split}") if p.is_dir())
    if len(matches) > 1:
        raise UserError(
            f"data.root {root} has several {challenge}_{split} folders {[m.name for m in matches]};"
            f" name one with data.{split}_path"
        )
    return matches[0] if matches else None


class FastMRIDataModule(TrainValDataModule):
    """Loaders over fastMRI HDF5 volumes (:class:`~deepinv_lab.data.fastmri.FastMRISliceDataset`).

    Args:
        root: a folder with the split folders as fastMRI distributes them: ``{challenge}_train``
            and ``{challenge}_val`` (or ``knee_multicoil_train``, ``brain_multicoil_val``, ...),
            optionally ``{challenge}_test``.
        challenge: ``"multicoil"`` or ``"singlecoil"``.
        train_path, val_path, test_path: explicit split folders, overriding ``root``'s.
        mask_type, center_fractions, accelerations, allow_any_combination: the mask function
            (:func:`~deepinv_lab.systems.sampling.create_mask_for_mask_type`).
        acquisitions: keep only these acquisitions (e.g. ``["CORPD_FBK"]``) in every split.
        train_size, train_size_unit: train on exactly ``train_size`` slices or volumes, chosen
            reproducibly with ``seed`` (nested subsets for growing sizes).
        sample_rate, volume_sample_rate: train on a fraction of the slices / volumes.
        val_sample_rate, val_volume_sample_rate: the same for the validation set.
        crop_size: center-crop targets to ``(h, w)``; None keeps the stored reconstruction size.
        use_dataset_cache: cache each split's index (see ``cache_dir``).
        cache_dir: the folder of the index caches; None: ``~/.cache/deepinv_lab/fastmri_index``
            (or ``$DEEPINV_LAB_CACHE_DIR``). The data folders are never written.
        compress_coils: compress each slice's k-space to fewer virtual coils first
            (:class:`~deepinv_lab.data.physics.CoilCompression`, SVD of the measured samples);
            None: all coils.
        estimate_maps: estimate coil maps from each slice's measured ACS columns
            (:class:`~deepinv_lab.data.physics.EspiritEstimate`, its parameters as config keys),
            so that batches carry ``MultiCoilMRI(maps, mask)`` and every Recon (CG-SENSE, MoDL,
            DEQ, ...) runs on the files; None: ``MultiCoilFourier``, for Recons that need no maps
            (VarNet, U-Net, zero-filled).
        estimate_maps_on: ``"workers"`` (each item in the DataLoader workers, so training does
            not wait with ``num_workers > 0``) or ``"device"`` (whole batches on the training
            device, after the transfer: a GPU's ESPIRiT).
        maps_cache_dir: with ``"workers"``, keep the maps in this folder and reuse them (they
            depend on the file, slice and ACS width only); never a data folder. None: no cache.
        batch_size: slices per batch (batches are bucketed by shape, so mixed matrix sizes and
            coil counts work with ``batch_size > 1``).
        num_workers: DataLoader worker processes (0 = load in the main process).
        pin_memory: pin batches in page-locked memory (faster host-to-GPU copies).
        seed: the loaders' shuffling/mask seed (None: the run's ``seed_everything``) and the
            seed choosing the training subset (None: 0, so the subset is the same in every run).

    The test set is the ``{challenge}_test`` folder when there is one (its files have no
    targets and carry their own masks: use it to predict), else the validation set.
    """

    def __init__(
        self,
        root: str | None = None,
        challenge: str = "multicoil",
        train_path: str | None = None,
        val_path: str | None = None,
        test_path: str | None = None,
        mask_type: str = "random",
        center_fractions: Sequence[float] = (0.08,),
        accelerations: Sequence[float] = (4,),
        allow_any_combination: bool = False,
        acquisitions: list[str] | None = None,
        train_size: int | None = None,
        train_size_unit: str = "slices",
        sample_rate: float | None = None,
        volume_sample_rate: float | None = None,
        val_sample_rate: float | None = None,
        val_volume_sample_rate: float | None = None,
        crop_size: tuple[int, int] | None = None,
        use_dataset_cache: bool = True,
        cache_dir: str | None = None,
        estimate_maps: EspiritEstimate | None = None,
        estimate_maps_on: str = "workers",
        maps_cache_dir: str | None = None,
        compress_coils: CoilCompression | None = None,
        batch_size: int = 1,
        num_workers: int = 0,
        pin_memory: bool = False,
        seed: int | None = None,
    ):
        super().__init__()
        if challenge not in CHALLENGES:
            raise UserError(f"data.challenge must be one of {CHALLENGES}, got {challenge!r}")
        check_batch_size(batch_size)
        if num_workers < 0:
            raise UserError(f"data.num_workers must be >= 0, got {num_workers}")
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.seed = seed
        self.challenge = challenge
        self.collate_fn = functools.partial(collate_fastmri, challenge=challenge)
        if estimate_maps_on not in ("workers", "device"):
            raise UserError(
                f"data.estimate_maps_on must be 'workers' or 'device', got {estimate_maps_on!r}"
            )
        if estimate_maps is not None and not isinstance(estimate_maps, EspiritEstimate):
            raise UserError(
                "data.estimate_maps must be an EspiritEstimate block "
                f"(deepinv_lab.data.physics.EspiritEstimate), got {type(estimate_maps).__name__}"
            )
        self.estimate_maps = estimate_maps
        self.maps_on_device = estimate_maps is not None and estimate_maps_on == "device"

        paths = {"train": train_path, "val": val_path, "test": test_path}
        folders: dict[str, Path | None] = {}
        for split, path in paths.items():
            if path is not None:
                if not Path(path).is_dir():
                    raise UserError(f"data.{split}_path {path} is not a folder")
                folders[split] = Path(path)
            elif root is not None:
                root_path = Path(root)
                if not root_path.is_dir():
                    raise UserError(f"data.root {root} is not a folder")
                folders[split] = find_split_folder(root_path, challenge, split)
            else:
                folders[split] = None
        for split in ("train", "val"):
            if folders[split] is None:
                where = (
                    f"data.root {root} has no {challenge}_{split} (or *_{challenge}_{split}) "
                    f"folder (it has {sorted(p.name for p in Path(root).iterdir())[:20]})"
                    if root is not None
                    else f"neither data.root nor data.{split}_path is set"
                )
                raise UserError(
                    f"FastMRIDataModule: no {split} data: {where}; set data.root to the folder "
                    f"holding {challenge}_train and {challenge}_val, or data.{split}_path"
                )

        common = dict(
            challenge=challenge,
            mask_type=mask_type,
            center_fractions=center_fractions,
            accelerations=accelerations,
            allow_any_combination=allow_any_combination,
            acquisitions=acquisitions,
            crop_size=crop_size,
            use_dataset_cache=use_dataset_cache,
            seed=0 if seed is None else seed,
            estimate_maps=None if self.maps_on_device else estimate_maps,
            maps_cache_dir=None if self.maps_on_device else maps_cache_dir,
            compress_coils=compress_coils,
        )
        if maps_cache_dir is not None:
            check_outside_data(Path(maps_cache_dir), folders)

        def cache_file(folder: Path) -> Path | None:
            if cache_dir is None or not use_dataset_cache:
                return None
            return Path(cache_dir) / default_cache_file(folder).name

        # Built now (headers are indexed, or read from the cache) so that bad data fails at
        # start-up with the file's name, not in the first validation loop.
        self.train_set = FastMRISliceDataset(
            folders["train"],
            split="train",
            train_size=train_size,
            train_size_unit=train_size_unit,
            sample_rate=sample_rate,
            volume_sample_rate=volume_sample_rate,
            cache_file=cache_file(folders["train"]),
            **common,
        )
        self.val_set = FastMRISliceDataset(
            folders["val"],
            split="val",
            sample_rate=val_sample_rate,
            volume_sample_rate=val_volume_sample_rate,
            cache_file=cache_file(folders["val"]),
            **common,
        )
        self.test_set = None
        if folders["test"] is not None:
            self.test_set = FastMRISliceDataset(
                folders["test"], split="test", cache_file=cache_file(folders["test"]), **common
            )

    def example_system(self) -> tuple[System, torch.Tensor]:
        """The System and k-space of the first validation slice (a batch of one), for the
        Recon's start-up check (:meth:`~deepinv_lab.recons.base.Recon.check_system`)."""
        batch = self.on_after_batch_transfer(self.collate_fn([self.val_set[0]]), 0)
        return batch["system"], batch["y"]

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        if self.maps_on_device and "coil_maps" not in batch:
            widths = acs_width(batch["mask"], batch["num_low_frequencies"])
            batch["coil_maps"] = self.estimate_maps(batch["y"], widths)
            batch["system"] = fastmri_system(batch, self.challenge).to(batch["y"].device)
        return batch
