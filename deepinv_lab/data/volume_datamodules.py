"""Super-resolution of 3-D volumes from LR/HR volume folders (DeepRock-SR-3D layout).

* :class:`PairedVolumeFolder`: the aligned LR/HR items of one split, 3-D patches or whole volumes.
* :class:`PairedVolumeSRDataModule`: its training/validation/test sets and loaders, the 3-D
  counterpart of :class:`~deepinv_lab.data.folder_datamodules.PairedSRDataModule` (same batch
  keys, same nominal ``Downsampling`` System, arguments named after volumes instead of images).

Files are read by :mod:`deepinv_lab.data.volumes` (``.npy``, TIFF stacks, NIfTI). Training items
are random aligned cubic crops (LR side ``p`` at ``(d, h, w)``, HR side ``scale p`` at
``scale (d, h, w)``) with, if ``augment``, one random symmetry of the cube
(:mod:`deepinv_lab.data.augment3d`) applied to both; validation items are fixed crops (one: the
centre; several: an even 3-D grid) or whole volumes. Randomness, subsets and ``train_size`` follow
the image folders (:mod:`deepinv_lab.data.folders`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset

from deepinv_lab.data.augment3d import apply_cube_symmetry, draw_cube_symmetry
from deepinv_lab.data.checks import positive_int
from deepinv_lab.data.crops import grid_crops, random_crop
from deepinv_lab.data.datamodule import TrainValDataModule
from deepinv_lab.data.folder_datamodules import (
    DEEPROCK_SPLITS,
    deeprock_sr_folders,
    evaluation_crops,
)
from deepinv_lab.data.folders import PairedCollate, match_low_resolution
from deepinv_lab.data.samplers import item_generator
from deepinv_lab.data.seeding import seeded_generator
from deepinv_lab.data.subsets import nested_subset
from deepinv_lab.data.volumes import (
    VOLUME_EXTENSIONS,
    find_volumes,
    read_volume,
    volume_shape,
    volume_stem,
)
from deepinv_lab.errors import UserError
from deepinv_lab.systems.downsampling import Downsampling

_SPLITS = ("train", "val", "test")
# The random stream of the subsets (that of the image folders).
_STREAM_SUBSET = 3


def _dims(shape: Sequence[int]) -> str:
    return " x ".join(str(int(n)) for n in shape)


class TooFewVolumesError(UserError):
    """More volumes asked for (``num_volumes``) than a folder holds."""

    def __init__(self, requested: int, available: int, root: str):
        super().__init__(
            f"num_volumes is {requested}, more than the {available} volumes found under {root!r}"
        )
        self.requested, self.available, self.root = requested, available, root


class PairedVolumeFolder(Dataset):
    """Low/high-resolution volume pairs from two folders, for 3-D super-resolution.

    The LR file of the HR file ``<sub>/<stem>.<ext>`` under ``hr_root`` is
    ``<sub>/<stem><lr_suffix>.<any volume ext>`` under ``lr_root`` (``0001.npy`` and
    ``0001x4.npy``); every HR needs its LR and the converse, and each LR must be exactly ``scale``
    times smaller than its HR along all three axes.

    Args:
        hr_root, lr_root: the two folders (searched recursively).
        scale: integer ratio of the HR to the LR size.
        split: ``"train"`` (random aligned crops, augmentation) or ``"val"``/``"test"`` (fixed
            aligned crops, or whole volumes).
        lr_patch_size: side ``p`` of the cubic LR crops (HR crops: ``scale p``, at ``scale`` times
            the LR position); None (validation/test only) = whole volumes.
        lr_suffix: appended to the HR stem to name the LR file; default ``f"x{scale}"``.
        filter: filter of the nominal ``Downsampling`` System added by :attr:`collate_fn` (the data
            are whatever the LR files hold).
        augment: training only: one of the 48 cube symmetries per item, the same for LR and HR.
        patches_per_volume: training: random crops per volume and epoch; validation: fixed crops
            per volume on an even 3-D grid (one: the centre).
        num_volumes: use exactly this many volumes, a nested subset fixed by ``seed`` (as
            ``num_images`` of :class:`~deepinv_lab.data.folders.PairedFolder`); None = all.
        seed: fixes the subset.
        extensions: file extensions taken as volumes.
        check_files: read every used file's header now (3-D, LR x ``scale`` == HR, LR at least
            ``lr_patch_size``); otherwise the same is checked when a pair is read.

    Items are dicts: ``y`` LR ``(1, p, p, p)`` float32, ``target`` HR ``(1, scale p, scale p,
    scale p)``, ``max_value`` ``tensor(1.0)``, ``volume_id`` (int64, the HR's position in the sorted
    HR list), ``slice_num`` (int64, the patch number), ``fname`` (the HR path relative to
    ``hr_root``). Batch them with :attr:`collate_fn` (``PairedCollate(scale, filter)``).
    """

    def __init__(
        self,
        hr_root: str | os.PathLike,
        lr_root: str | os.PathLike,
        scale: int = 4,
        split: str = "train",
        lr_patch_size: int | None = 16,
        lr_suffix: str | None = None,
        filter: str = "bicubic",
        augment: bool = True,
        patches_per_volume: int = 1,
        num_volumes: int | None = None,
        seed: int = 0,
        extensions: Sequence[str] = VOLUME_EXTENSIONS,
        check_files: bool = True,
    ):
        if split not in _SPLITS:
            raise UserError(f"split must be one of {_SPLITS}, got {split!r}")
        self.split = split
        self.training = split == "train"
        self.scale = positive_int(scale, "scale")
        Downsampling(scale, filter)  # checks filter
        self.filter = filter
        self.patches_per_volume = positive_int(patches_per_volume, "patches_per_volume")
        if lr_patch_size is None:
            if self.training:
                raise UserError(
                    "lr_patch_size=None (whole volumes) is for validation/test only; training "
                    "needs cubic crops of one size"
                )
            if self.patches_per_volume != 1:
                raise UserError(
                    f"patches_per_volume ({patches_per_volume}) must be 1 with "
                    "lr_patch_size=None (whole volumes)"
                )
        else:
            positive_int(lr_patch_size, "lr_patch_size")
        self.lr_patch_size = lr_patch_size
        self.lr_suffix = f"x{scale}" if lr_suffix is None else str(lr_suffix)
        self.augment = bool(augment)
        self.seed = int(seed)
        self.hr_root = Path(hr_root).expanduser().resolve()
        self.lr_root = Path(lr_root).expanduser().resolve()
        self.files = find_volumes(self.hr_root, extensions)
        self.names = [path.relative_to(self.hr_root).as_posix() for path in self.files]
        self.lr_files = self._match(find_volumes(self.lr_root, extensions))
        self.indices = self._subset(num_volumes)
        # HR (D, H, W) of the used volumes, from their headers; None without check_files.
        self.sizes: dict[int, tuple[int, int, int]] | None = None
        if check_files:
            self.sizes = {}
            for i in self.indices:
                hr_shape, lr_shape = volume_shape(self.files[i]), volume_shape(self.lr_files[i])
                self._check_pair(i, hr_shape, lr_shape)
                self.sizes[i] = hr_shape

    def _key(self, root: Path, path: Path) -> str:
        """The relative path of a file without its volume extension."""
        return (path.parent.relative_to(root) / volume_stem(path)).as_posix()

    def _match(self, lr_files: list[Path]) -> list[Path]:
        """The LR file of each HR file, matched by relative path (class docstring)."""
        return match_low_resolution(
            self.names,
            [self._key(self.hr_root, path) for path in self.files],
            lr_files,
            self.hr_root,
            self.lr_root,
            self.lr_suffix,
            lambda path: self._key(self.lr_root, path),
            noun="volumes",
        )

    def _subset(self, num_volumes: int | None) -> list[int]:
        count = len(self.files)
        if num_volumes is None:
            return list(range(count))
        positive_int(num_volumes, "num_volumes")
        if num_volumes > count:
            raise TooFewVolumesError(num_volumes, count, str(self.hr_root))
        return nested_subset(count, num_volumes, seeded_generator(self.seed, _STREAM_SUBSET))

    def _check_pair(self, i: int, hr_shape: Sequence[int], lr_shape: Sequence[int]) -> None:
        if tuple(n * self.scale for n in lr_shape) != tuple(hr_shape):
            raise UserError(
                f"low-resolution {str(self.lr_files[i])!r} ({_dims(lr_shape)}) times scale "
                f"{self.scale} is not the shape of high-resolution {str(self.files[i])!r} "
                f"({_dims(hr_shape)})"
            )
        patch = self.lr_patch_size
        if patch is not None and min(lr_shape) < patch:
            raise UserError(
                f"low-resolution {str(self.lr_files[i])!r} ({_dims(lr_shape)}) is smaller than "
                f"lr_patch_size ({patch})"
            )

    @property
    def collate_fn(self) -> PairedCollate:
        """The collate function of this dataset's ``scale`` and ``filter``: stacks items and adds
        the nominal ``Downsampling(scale, filter)`` as ``batch["system"]``."""
        return PairedCollate(self.scale, self.filter)

    def bucket_keys(self) -> list[tuple[int, int, int]] | None:
        """One shape key per item for batching whole volumes of equal shape together (whole
        volumes with known shapes only), else None."""
        if self.lr_patch_size is not None or self.sizes is None:
            return None
        return [self.sizes[i] for i in self.indices for _ in range(self.patches_per_volume)]

    def __len__(self) -> int:
        return len(self.indices) * self.patches_per_volume

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {int(index)} out of range for {len(self)} items")
        position = int(index) % len(self)
        file_index = self.indices[position // self.patches_per_volume]
        number = position % self.patches_per_volume
        high = read_volume(self.files[file_index]).data
        low = read_volume(self.lr_files[file_index]).data
        self._check_pair(file_index, high.shape, low.shape)
        patch, scale = self.lr_patch_size, self.scale
        if patch is None:
            low_patch, high_patch = torch.from_numpy(low), torch.from_numpy(high)
        else:
            symmetry = 0  # the identity
            if self.training:
                generator = item_generator(index)  # the index itself: a SeededIndex has a seed
                origin = random_crop(low.shape, patch, generator, dims=3)
                if self.augment:
                    symmetry = draw_cube_symmetry(generator)
            else:
                origin = grid_crops(low.shape, patch, self.patches_per_volume, dims=3)[number]
            low_patch = torch.from_numpy(_crop(low, origin, patch))
            high_patch = torch.from_numpy(_crop(high, [scale * o for o in origin], scale * patch))
            if symmetry:
                low_patch = apply_cube_symmetry(low_patch, symmetry).contiguous()
                high_patch = apply_cube_symmetry(high_patch, symmetry).contiguous()
        return {
            "y": low_patch[None],
            "target": high_patch[None],
            "max_value": torch.tensor(1.0),
            "volume_id": torch.tensor(file_index, dtype=torch.int64),
            "slice_num": torch.tensor(number, dtype=torch.int64),
            "fname": self.names[file_index],
        }


def _crop(volume, origin: Sequence[int], size: int):
    front, top, left = origin
    return volume[front : front + size, top : top + size, left : left + size].copy()


def _folder(value: str | os.PathLike | None, name: str) -> str:
    """A required folder argument, named in the error."""
    if value is None:
        raise UserError(f"data.{name} is required (or give data.root)")
    if not Path(value).expanduser().is_dir():
        raise UserError(f"data.{name}: {str(value)!r} does not exist or is not a folder")
    return str(value)


def _optional_size(value: int | None, name: str) -> None:
    if value is not None:
        positive_int(value, f"data.{name}")


def paired_split_folders(
    folders: dict[str, str | None], root: str | None, scale: int, degradation: str
) -> dict[str, str | None]:
    """The checked ``{train,val,test}_{hr,lr}`` folders: those given, else the DeepRock-SR
    folders under ``root`` (:func:`~deepinv_lab.data.folder_datamodules.deeprock_sr_folders`);
    the test pair is optional. Errors name the ``data.`` argument."""
    folders = dict(folders)
    if root is not None:  # DeepRock-SR layout; explicit folders override its splits
        base = _folder(root, "root")
        for split in ("train", "val", "test"):
            hr, lr = f"{split}_hr", f"{split}_lr"
            if folders[hr] is not None and folders[lr] is not None:
                continue
            found = deeprock_sr_folders(base, split, scale, degradation)
            word = DEEPROCK_SPLITS[split]
            if found is None and split != "test":
                raise UserError(
                    f"data.root: no DeepRock-SR {word} folders under {base!r} (expected "
                    f"<name>_{word}_HR and <name>_{word}_LR_{degradation}_X{scale}), or give "
                    f"data.{hr} and data.{lr}"
                )
            if found is not None:
                folders[hr] = folders[hr] or str(found[0])
                folders[lr] = folders[lr] or str(found[1])
    for name in ("train_hr", "train_lr", "val_hr", "val_lr"):
        folders[name] = _folder(folders[name], name)
    if (folders["test_hr"] is None) != (folders["test_lr"] is None):
        raise UserError("give both data.test_hr and data.test_lr, or neither")
    if folders["test_hr"] is not None:
        folders["test_hr"] = _folder(folders["test_hr"], "test_hr")
        folders["test_lr"] = _folder(folders["test_lr"], "test_lr")
    return folders


def _build(name: str, *args, **kwargs) -> PairedVolumeFolder:
    """A :class:`PairedVolumeFolder`, its user errors prefixed with the ``data.`` argument."""
    try:
        return PairedVolumeFolder(*args, **kwargs)
    except TooFewVolumesError as error:
        size = "train_size" if name.startswith("train") else "val_size"
        raise UserError(
            f"data.{size} is {error.requested}, more than the {error.available} volumes found "
            f"under {error.root!r} (data.{name})"
        ) from error
    except UserError as error:
        raise UserError(f"data.{name}: {error}") from error


class PairedVolumeSRDataModule(TrainValDataModule):
    """3-D super-resolution from LR/HR volume pairs (:class:`PairedVolumeFolder`), e.g.
    DeepRock-SR-3D.

    Args:
        train_hr, train_lr, val_hr, val_lr: the HR and LR folders of each split.
        test_hr, test_lr: optional test folders (default: the validation set serves as test set).
        root: a dataset in DeepRock-SR layout, holding ``<name>_train_HR``,
            ``<name>_train_LR_<degradation>_X<scale>``, the same with ``valid`` and (optionally)
            ``test`` (e.g. ``DeepRockSR-3D/shuffled3D`` with ``shuffled3D_train_HR``): the default
            of the folders above (a split whose two folders are given overrides it).
        degradation: the LR kind of the DeepRock-SR layout (``"default"``, ``"unknown"``).
        scale: the HR/LR size ratio along each axis.
        lr_patch_size: side of the cubic LR training crops (HR crops: ``scale`` times larger).
        val_lr_patch_size: side of the LR validation/test crops; None = ``lr_patch_size``.
        val_whole_volumes: validate/test on whole volumes (batches group volumes of equal shape).
        lr_suffix: LR file name = HR stem + ``lr_suffix``; default ``f"x{scale}"``.
        filter: filter of the nominal ``Downsampling`` System of the batches.
        augment: the 48 cube symmetries on training crops (the same on LR and HR).
        patches_per_volume: random training crops per volume and epoch.
        val_patches_per_volume: fixed validation/test crops per volume (one: the centre; several:
            an even 3-D grid).
        train_size: number of distinct training volumes, a nested subset fixed by ``seed``;
            None = all.
        val_size: number of validation (and test) volumes, a seeded subset; None = all.
        batch_size: items per batch.
        num_workers: DataLoader worker processes (0 = load in the main process).
        pin_memory: the DataLoaders' ``pin_memory``.
        seed: the loaders' shuffling and training-draw seed (None: the run's
            ``seed_everything``) and the seed of the subsets (None: 0, the same in every run).
        extensions: file extensions taken as volumes.
        check_files: read every used file's header at construction (3-D, LR x ``scale`` == HR,
            sizes >= the crops); False for huge folders.

    Batches: ``y`` ``(B, 1, p, p, p)``, ``target`` ``(B, 1, scale p, scale p, scale p)``,
    ``max_value``, ``volume_id``, ``slice_num`` ``(B,)``, ``fname`` (list), ``system`` (one
    nominal ``Downsampling(scale, filter)``): the keys of
    :class:`~deepinv_lab.data.folder_datamodules.PairedSRDataModule`'s batches.
    """

    def __init__(
        self,
        train_hr: str | None = None,
        train_lr: str | None = None,
        val_hr: str | None = None,
        val_lr: str | None = None,
        test_hr: str | None = None,
        test_lr: str | None = None,
        root: str | None = None,
        degradation: str = "default",
        scale: int = 4,
        lr_patch_size: int = 16,
        val_lr_patch_size: int | None = None,
        val_whole_volumes: bool = False,
        lr_suffix: str | None = None,
        filter: str = "bicubic",
        augment: bool = True,
        patches_per_volume: int = 1,
        val_patches_per_volume: int = 1,
        train_size: int | None = None,
        val_size: int | None = None,
        batch_size: int = 8,
        num_workers: int = 0,
        pin_memory: bool = False,
        seed: int | None = None,
        extensions: Sequence[str] = VOLUME_EXTENSIONS,
        check_files: bool = True,
    ):
        super().__init__()
        positive_int(batch_size, "data.batch_size")
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise UserError(f"data.num_workers must be an integer >= 0, got {num_workers!r}")
        for name, value in (
            ("train_size", train_size),
            ("val_size", val_size),
            ("val_lr_patch_size", val_lr_patch_size),
        ):
            _optional_size(value, name)
        for name, value in (
            ("scale", scale),
            ("lr_patch_size", lr_patch_size),
            ("patches_per_volume", patches_per_volume),
            ("val_patches_per_volume", val_patches_per_volume),
        ):
            positive_int(value, f"data.{name}")
        if val_whole_volumes and not check_files and batch_size > 1:
            raise UserError(
                f"data.val_whole_volumes with data.check_files false needs data.batch_size 1 "
                f"(got {batch_size}): whole volumes are batched by shape, and the shapes are only "
                "known from the header scan of check_files"
            )
        try:
            Downsampling(scale, filter)
        except UserError as error:
            raise UserError(f"data.filter: {error}") from error
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = bool(pin_memory)
        self.seed = seed
        self.train_size = train_size
        folders = {
            "train_hr": train_hr,
            "train_lr": train_lr,
            "val_hr": val_hr,
            "val_lr": val_lr,
            "test_hr": test_hr,
            "test_lr": test_lr,
        }
        self.folders = folders = paired_split_folders(folders, root, scale, degradation)
        common = dict(
            scale=scale,
            lr_suffix=lr_suffix,
            filter=filter,
            seed=0 if seed is None else seed,
            extensions=extensions,
            check_files=check_files,
        )
        val_crop, val_crops = evaluation_crops(
            val_whole_volumes, val_lr_patch_size, lr_patch_size, val_patches_per_volume
        )
        evaluation = dict(
            lr_patch_size=val_crop,
            patches_per_volume=val_crops,
            num_volumes=val_size,
            **common,
        )
        # Built now so that bad arguments and files fail at start-up.
        self.train_set = _build(
            "train_hr/train_lr",
            folders["train_hr"],
            folders["train_lr"],
            split="train",
            lr_patch_size=lr_patch_size,
            augment=augment,
            patches_per_volume=patches_per_volume,
            num_volumes=train_size,
            **common,
        )
        self.val_set = _build(
            "val_hr/val_lr", folders["val_hr"], folders["val_lr"], split="val", **evaluation
        )
        if folders["test_hr"] is not None:
            self.test_set = _build(
                "test_hr/test_lr",
                folders["test_hr"],
                folders["test_lr"],
                split="test",
                **evaluation,
            )
        self.collate_fn = self.train_set.collate_fn
