"""LightningDataModules over users' image folders (:mod:`deepinv_lab.data.folders`).

* :class:`ImageFolderDenoisingDataModule`: Gaussian denoising on the images of a training and a
  validation folder (ImageNet layout: ``root/train/**``, ``root/val/**``).
* :class:`PairedSRDataModule`: super-resolution from LR/HR pairs (DeepRock-SR/DIV2K layout:
  ``<name>_train_HR/0001.png`` with ``<name>_train_LR_default_X4/0001x4.png``).

``train_size`` is the number of **distinct training images**, a subset fixed by ``seed`` and nested
for growing sizes (the first ``train_size`` of a seeded permutation of the sorted file list): the
axis of a scaling-law study in the manner of Klug & Heckel. ``seed`` (as in the fastMRI
DataModule) seeds the loaders (training order and draws; None: the run's ``seed_everything``) and
fixes the subsets and the validation crops and noise (None: 0, the same in every run).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from torch.utils.data import Dataset

from deepinv_lab.data.datamodule import TrainValDataModule
from deepinv_lab.data.folders import ImageFolder, PairedFolder, TooFewImagesError, check_sigma
from deepinv_lab.data.image_files import IMAGE_EXTENSIONS
from deepinv_lab.errors import UserError
from deepinv_lab.systems.downsampling import Downsampling


def _check_loader_args(batch_size: int, num_workers: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise UserError(f"data.batch_size must be an integer >= 1, got {batch_size!r}")
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise UserError(f"data.num_workers must be an integer >= 0, got {num_workers!r}")


def _check_size(value: int | None, name: str, optional: bool = True) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        suffix = " or null" if optional else ""
        raise UserError(f"data.{name} must be an integer >= 1{suffix}, got {value!r}")


def _folder(value: str | os.PathLike | None, name: str) -> str:
    """A required folder argument, named in the error."""
    if value is None:
        raise UserError(f"data.{name} is required (or give data.root)")
    if not Path(value).expanduser().is_dir():
        raise UserError(f"data.{name}: {str(value)!r} does not exist or is not a folder")
    return str(value)


def image_folder_roots(
    root: str | None,
    train_root: str | None,
    val_root: str | None,
    test_root: str | None = None,
) -> tuple[str, str, str | None]:
    """The checked training, validation and (optional) test folders: those given, else
    ``root``'s ``train/``, ``val/`` and ``test/`` (ImageNet layout). Errors name the argument
    (``data.root``, ``data.train_root``, ...)."""
    if root is not None:
        base = Path(_folder(root, "root")).expanduser()
        for name, value, sub in (
            ("train_root", train_root, "train"),
            ("val_root", val_root, "val"),
        ):
            if value is None and not (base / sub).is_dir():
                raise UserError(
                    f"data.root: {str(base / sub)!r} does not exist; data.root must hold the "
                    f"folders train/ and val/ (and optionally test/), or give data.{name}"
                )
        train_root = train_root if train_root is not None else str(base / "train")
        val_root = val_root if val_root is not None else str(base / "val")
        if test_root is None and (base / "test").is_dir():
            test_root = str(base / "test")
    train_root = _folder(train_root, "train_root")
    val_root = _folder(val_root, "val_root")
    if test_root is not None:
        test_root = _folder(test_root, "test_root")
    return train_root, val_root, test_root


def check_whole_images(val_whole_images: bool, check_files: bool, batch_size: int) -> None:
    if val_whole_images and not check_files and batch_size > 1:
        raise UserError(
            f"data.val_whole_images with data.check_files false needs data.batch_size 1 (got "
            f"{batch_size}): whole images are batched by size, and the sizes are only known "
            "from the header scan of check_files"
        )


def _wrap(name: str, error: UserError) -> UserError:
    """The user error of a dataset with the DataModule argument it came from in front."""
    if isinstance(error, TooFewImagesError):
        size = "train_size" if name.startswith("train") else "val_size"
        return UserError(
            f"data.{size} is {error.requested}, more than the {error.available} images found "
            f"under {error.root!r} (data.{name})"
        )
    return UserError(f"data.{name}: {error}")


def _build(name: str, dataset_class: type[Dataset], *args, **kwargs) -> Dataset:
    """``dataset_class(*args, **kwargs)``, its user errors named after the DataModule argument
    ``name`` they came from (:func:`_wrap`)."""
    try:
        return dataset_class(*args, **kwargs)
    except UserError as error:
        raise _wrap(name, error) from error


def evaluation_crops(
    whole_images: bool, patch_size: int | None, train_patch_size: int, patches_per_image: int
) -> tuple[int | None, int]:
    """``(patch_size, patches_per_image)`` of the validation/test sets: one uncropped item per
    image with ``val_whole_images``, else ``patches_per_image`` crops of ``patch_size`` (None:
    the training ``train_patch_size``)."""
    if whole_images:
        return None, 1
    return patch_size or train_patch_size, patches_per_image


class _FolderDataModule(TrainValDataModule):
    """What the folder DataModules do with the arguments they share."""

    def _configure(self, arguments: dict) -> None:
        """Check the arguments every folder DataModule has (``locals()`` of its ``__init__``)
        and keep the loader's."""
        _check_loader_args(arguments["batch_size"], arguments["num_workers"])
        for name in ("train_size", "val_size"):
            _check_size(arguments[name], name)
        for name in ("patches_per_image", "val_patches_per_image"):
            _check_size(arguments[name], name, optional=False)
        check_whole_images(
            arguments["val_whole_images"], arguments["check_files"], arguments["batch_size"]
        )
        self.batch_size = arguments["batch_size"]
        self.num_workers = arguments["num_workers"]
        self.pin_memory = bool(arguments["pin_memory"])
        self.seed = arguments["seed"]
        self.train_size = arguments["train_size"]


class ImageFolderDenoisingDataModule(_FolderDataModule):
    """Gaussian denoising on image folders (:class:`~deepinv_lab.data.folders.ImageFolder`).

    Args:
        train_root, val_root: the training and validation folders (images found recursively).
        test_root: optional test folder (default: the validation set serves as test set).
        root: a folder holding ``train/``, ``val/`` and optionally ``test/`` (ImageNet layout),
            the default of the three folders above (those given override it).
        patch_size: side of the square training crops.
        val_patch_size: side of the validation/test centre crops; None = ``patch_size``.
        val_whole_images: validate/test on whole images instead of crops (batches group images
            of equal size).
        sigma, sigma_range: the noise level, or the range it is drawn from per item (blind);
            default ``sigma = 25 / 255``.
        grayscale: BT.601 luma (1 channel) if True, else RGB (3 channels).
        augment: random flips/90-degree rotations of training crops.
        patches_per_image: random training crops per image and epoch.
        val_patches_per_image: fixed validation crops per image (one: the centre).
        train_size: number of distinct training images (module docstring); None = all.
        val_size: number of validation (and test) images, a seeded subset; None = all.
        batch_size: items per batch.
        num_workers: DataLoader worker processes (0 = load in the main process).
        pin_memory: the DataLoaders' ``pin_memory`` (faster host-to-GPU copies).
        seed: the loaders' shuffling and training-draw seed (None: the run's
            ``seed_everything``) and the seed of the subsets and the validation crops and noise
            (None: 0, so they are the same in every run).
        extensions: file extensions taken as images.
        check_files: read every used image's header at construction (errors early; False for
            huge folders).

    Batches: ``y``, ``target`` ``(B, C, P, P)``, ``max_value``, ``sigma``, ``volume_id``,
    ``slice_num`` ``(B,)``, ``fname`` (list), ``system`` (``GaussianNoise`` with the per-sample
    levels).
    """

    def __init__(
        self,
        train_root: str | None = None,
        val_root: str | None = None,
        test_root: str | None = None,
        root: str | None = None,
        patch_size: int = 64,
        val_patch_size: int | None = None,
        val_whole_images: bool = False,
        sigma: float | None = None,
        sigma_range: tuple[float, float] | None = None,
        grayscale: bool = True,
        augment: bool = True,
        patches_per_image: int = 1,
        val_patches_per_image: int = 1,
        train_size: int | None = None,
        val_size: int | None = None,
        batch_size: int = 8,
        num_workers: int = 0,
        pin_memory: bool = False,
        seed: int | None = None,
        extensions: Sequence[str] = IMAGE_EXTENSIONS,
        check_files: bool = True,
    ):
        super().__init__()
        self._configure(locals())
        _check_size(patch_size, "patch_size", optional=False)
        _check_size(val_patch_size, "val_patch_size")
        try:
            check_sigma(sigma, sigma_range)
        except UserError as error:
            raise UserError(f"data.sigma/sigma_range: {error}") from error
        train_root, val_root, test_root = image_folder_roots(root, train_root, val_root, test_root)
        common = dict(
            sigma=sigma,
            sigma_range=sigma_range,
            grayscale=grayscale,
            seed=0 if seed is None else seed,
            extensions=extensions,
            check_files=check_files,
        )
        val_crop, val_crops = evaluation_crops(
            val_whole_images, val_patch_size, patch_size, val_patches_per_image
        )
        evaluation = dict(
            split="val",
            patch_size=val_crop,
            patches_per_image=val_crops,
            num_images=val_size,
            **common,
        )
        # Built now so that bad arguments and files fail at start-up.
        self.train_set = _build(
            "train_root",
            ImageFolder,
            train_root,
            split="train",
            patch_size=patch_size,
            augment=augment,
            patches_per_image=patches_per_image,
            num_images=train_size,
            **common,
        )
        self.val_set = _build("val_root", ImageFolder, val_root, **evaluation)
        if test_root is not None:
            self.test_set = _build(
                "test_root", ImageFolder, test_root, **{**evaluation, "split": "test"}
            )
        self.collate_fn = self.train_set.collate_fn


#: Split names of the DeepRock-SR folders, by DataModule split.
DEEPROCK_SPLITS = {"train": "train", "val": "valid", "test": "test"}


def deeprock_sr_folders(
    root: str | os.PathLike, split: str, scale: int, degradation: str = "default"
) -> tuple[Path, Path] | None:
    """The ``(hr_folder, lr_folder)`` of a split in DeepRock-SR layout, or None if absent.

    ``root`` holds ``<name>_<split>_HR`` and ``<name>_<split>_LR_<degradation>_X<scale>``
    (e.g. ``DeepRockSR-2D/shuffled2D`` with ``shuffled2D_train_HR`` and
    ``shuffled2D_train_LR_default_X4``); ``split`` is ``"train"``, ``"val"`` (folder name
    ``valid``) or ``"test"``. Names are compared case-insensitively.

    Raises:
        UserError: several folders match, or only one of the two exists.
    """
    word = DEEPROCK_SPLITS[split]
    base = Path(root).expanduser()
    children = sorted(p for p in base.iterdir() if p.is_dir())
    hr_tail = f"_{word}_hr".lower()
    lr_tail = f"_{word}_lr_{degradation}_x{scale}".lower()
    hr = [p for p in children if p.name.lower().endswith(hr_tail)]
    lr = [p for p in children if p.name.lower().endswith(lr_tail)]
    if len(hr) > 1 or len(lr) > 1:
        raise UserError(
            f"several DeepRock-SR {word} folders under {str(base)!r}: "
            f"{[p.name for p in hr + lr]}; point data.root at one of the datasets "
            "(e.g. DeepRockSR-2D/shuffled2D)"
        )
    if not hr and not lr:
        return None
    if not (hr and lr):
        found = (hr or lr)[0].name
        missing = f"*{lr_tail}" if hr else f"*{hr_tail}"
        raise UserError(
            f"DeepRock-SR layout under {str(base)!r}: found {found!r} but no folder "
            f"{missing!r} (case-insensitive); check data.scale and data.degradation"
        )
    return hr[0], lr[0]


class PairedSRDataModule(_FolderDataModule):
    """Super-resolution from LR/HR image pairs (:class:`~deepinv_lab.data.folders.PairedFolder`).

    Args:
        train_hr, train_lr, val_hr, val_lr: the HR and LR folders of each split.
        test_hr, test_lr: optional test folders (default: the validation set serves as test set).
        root: a dataset in DeepRock-SR layout, holding ``<name>_train_HR``,
            ``<name>_train_LR_<degradation>_X<scale>``, the same with ``valid`` and (optionally)
            ``test`` (:func:`deeprock_sr_folders`): the default of the folders above (a split
            whose two folders are given overrides it).
        degradation: the LR kind of the DeepRock-SR layout (``"default"``, ``"unknown"``).
        scale: the HR/LR size ratio.
        lr_patch_size: side of the square LR training crops (HR crops: ``scale`` times larger).
        val_lr_patch_size: side of the LR validation/test centre crops; None = ``lr_patch_size``.
        val_whole_images: validate/test on whole images (batches group images of equal size).
        lr_suffix: LR file name = HR stem + ``lr_suffix``; default ``f"x{scale}"``.
        filter: filter of the nominal ``Downsampling`` System of the batches (the data are
            whatever the LR files hold).
        grayscale, augment, patches_per_image, val_patches_per_image, train_size, val_size,
        batch_size, num_workers, pin_memory, seed, extensions, check_files: as in
            :class:`ImageFolderDenoisingDataModule` (``check_files`` also checks that every LR is
            ``scale`` times smaller than its HR).

    Batches: ``y`` ``(B, C, p, p)``, ``target`` ``(B, C, scale p, scale p)``, ``max_value``,
    ``volume_id``, ``slice_num`` ``(B,)``, ``fname`` (list), ``system`` (one nominal
    ``Downsampling(scale, filter)``).
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
        lr_patch_size: int = 48,
        val_lr_patch_size: int | None = None,
        val_whole_images: bool = False,
        lr_suffix: str | None = None,
        filter: str = "bicubic",
        grayscale: bool = True,
        augment: bool = True,
        patches_per_image: int = 1,
        val_patches_per_image: int = 1,
        train_size: int | None = None,
        val_size: int | None = None,
        batch_size: int = 8,
        num_workers: int = 0,
        pin_memory: bool = False,
        seed: int | None = None,
        extensions: Sequence[str] = IMAGE_EXTENSIONS,
        check_files: bool = True,
    ):
        super().__init__()
        self._configure(locals())
        _check_size(scale, "scale", optional=False)
        _check_size(lr_patch_size, "lr_patch_size", optional=False)
        _check_size(val_lr_patch_size, "val_lr_patch_size")
        try:
            Downsampling(scale, filter)
        except UserError as error:
            raise UserError(f"data.filter: {error}") from error
        folders = {
            "train_hr": train_hr,
            "train_lr": train_lr,
            "val_hr": val_hr,
            "val_lr": val_lr,
            "test_hr": test_hr,
            "test_lr": test_lr,
        }
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
        self.folders = folders
        common = dict(
            scale=scale,
            lr_suffix=lr_suffix,
            filter=filter,
            grayscale=grayscale,
            seed=0 if seed is None else seed,
            extensions=extensions,
            check_files=check_files,
        )
        val_crop, val_crops = evaluation_crops(
            val_whole_images, val_lr_patch_size, lr_patch_size, val_patches_per_image
        )
        evaluation = dict(
            lr_patch_size=val_crop,
            patches_per_image=val_crops,
            num_images=val_size,
            **common,
        )
        self.train_set = _build(
            "train_hr/train_lr",
            PairedFolder,
            folders["train_hr"],
            folders["train_lr"],
            split="train",
            lr_patch_size=lr_patch_size,
            augment=augment,
            patches_per_image=patches_per_image,
            num_images=train_size,
            **common,
        )
        self.val_set = _build(
            "val_hr/val_lr",
            PairedFolder,
            folders["val_hr"],
            folders["val_lr"],
            split="val",
            **evaluation,
        )
        if folders["test_hr"] is not None:
            self.test_set = _build(
                "test_hr/test_lr",
                PairedFolder,
                folders["test_hr"],
                folders["test_lr"],
                split="test",
                **evaluation,
            )
        self.collate_fn = self.train_set.collate_fn
