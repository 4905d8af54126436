"""Datasets over users' image folders: denoising (:class:`ImageFolder`) and super-resolution from
low/high-resolution pairs (:class:`PairedFolder`).

Conventions (``docs/data.md``, "Image folders"); how files are found and read (discovery,
intensities, grayscale) is :mod:`deepinv_lab.data.image_files`'s:

* **Items**: an item's ``volume_id`` is its image's position in the sorted file list and
  ``fname`` its relative path.
* **Crops**: training items are random square crops (``patches_per_image`` per image and epoch)
  with, if ``augment``, a random one of the 8 flips/90-degree rotations; validation items are
  fixed crops (one: the centre; several: an even grid) or, with ``patch_size=None``, whole images.
* **Randomness**: a training item draws its crop, flip, noise level and noise from
  :func:`~deepinv_lab.data.samplers.item_generator` of its index (reproducible with the project's
  :class:`~deepinv_lab.data.samplers.EpochSampler`, else from torch's global RNG); validation items
  are fixed by ``seed`` and the index.
* **Checks at construction** read only the image headers (cheap): that every file opens as an
  image of a supported mode, that it is at least as large as the crops, and (pairs) that
  ``LR size * scale == HR size``. ``check_files=False`` skips the scan for huge folders; the same
  problems are then reported when an image is read. An image that cannot be decoded raises a
  :class:`~deepinv_lab.errors.UserError` naming the file, also from DataLoader workers. Files
  are only ever read.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset, default_collate

from deepinv_lab.data.checks import positive_int
from deepinv_lab.data.crops import apply_dihedral, draw_dihedral, grid_crops, random_crop
from deepinv_lab.data.image_files import IMAGE_EXTENSIONS, find_images, image_header, read_image
from deepinv_lab.data.physics.noise import DEFAULT_SIGMA
from deepinv_lab.data.samplers import item_generator
from deepinv_lab.data.seeding import seeded_generator
from deepinv_lab.data.subsets import nested_subset
from deepinv_lab.errors import UserError
from deepinv_lab.systems.downsampling import Downsampling
from deepinv_lab.systems.noise import GaussianNoise

_SPLITS = ("train", "val", "test")
# Independent random streams of one seed.
_STREAM_VAL, _STREAM_SUBSET = 1, 3
# Names listed in an error message about many files.
_SHOWN = 5


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(repr(name) for name in names[:_SHOWN])
    return shown + (f", ... ({len(names) - _SHOWN} more)" if len(names) > _SHOWN else "")


def match_low_resolution(
    names: Sequence[str],
    stems: Sequence[str],
    lr_files: Sequence[Path],
    hr_root: Path,
    lr_root: Path,
    lr_suffix: str,
    lr_key: Callable[[Path], str],
    noun: str = "files",
) -> list[Path]:
    """The low-resolution file of each high-resolution one, for paired LR/HR folders.

    Args:
        names: the HR files' paths relative to ``hr_root`` (for messages).
        stems: the HR files' relative paths without extension; the LR file of each is the one
            whose ``lr_key`` is ``stem + lr_suffix``.
        lr_files: the candidate LR files.
        lr_key: an LR file's relative path without extension.
        noun: ``"files"`` or ``"volumes"``, for messages.

    Raises a :class:`~deepinv_lab.errors.UserError` naming the folders and files when two LR
    files share a key, an HR file has no LR file, or an LR file has no HR file.
    """
    by_key: dict[str, Path] = {}
    for path in lr_files:
        key = lr_key(path)
        if key in by_key:
            raise UserError(
                f"two low-resolution files under {str(lr_root)!r} have the name "
                f"{key!r} but different extensions: {by_key[key].name}, {path.name}"
            )
        by_key[key] = path
    wanted = [stem + lr_suffix for stem in stems]
    missing = [name for name, key in zip(names, wanted, strict=True) if key not in by_key]
    extra = sorted(set(by_key) - set(wanted))
    if missing or extra:
        parts = []
        if missing:
            parts.append(
                f"{len(missing)} of {len(names)} high-resolution {noun} under "
                f"{str(hr_root)!r} have no low-resolution file "
                f"<stem>{lr_suffix}.<ext> under {str(lr_root)!r}: {_listing(missing)}"
            )
        if extra:
            unmatched = [by_key[key].relative_to(lr_root).as_posix() for key in extra]
            parts.append(
                f"{len(extra)} of {len(by_key)} low-resolution {noun} under "
                f"{str(lr_root)!r} have no high-resolution file: {_listing(unmatched)}"
            )
        raise UserError(
            "; ".join(parts) + f" (LR name = HR stem + lr_suffix {lr_suffix!r}; check "
            "the folders, scale and lr_suffix)"
        )
    return [by_key[key] for key in wanted]


class TooFewImagesError(UserError):
    """More images asked for (``num_images``) than a folder holds."""

    def __init__(self, requested: int, available: int, root: str):
        super().__init__(
            f"num_images is {requested}, more than the {available} images found under {root!r}"
        )
        self.requested, self.available, self.root = requested, available, root


def _image_subset(count: int, num_images: int | None, seed: int, root: str) -> list[int]:
    """Indices of the images used: all, or a nested subset of ``num_images`` fixed by ``seed``
    (:func:`~deepinv_lab.data.subsets.nested_subset`)."""
    if num_images is None:
        return list(range(count))
    positive_int(num_images, "num_images")
    if num_images > count:
        raise TooFewImagesError(num_images, count, root)
    return nested_subset(count, num_images, seeded_generator(seed, _STREAM_SUBSET))


#: Default noise level of :class:`ImageFolder` (25 on the 0-255 scale).


def check_sigma(
    sigma: float | None, sigma_range: Sequence[float] | None
) -> tuple[float | None, tuple[float, float] | None]:
    """The noise options of the denoising datasets, checked: ``(sigma, None)`` for a fixed level
    (``DEFAULT_SIGMA`` when neither is given) or ``(None, (low, high))`` for a drawn one."""
    if sigma is not None and sigma_range is not None:
        raise UserError(f"give either sigma ({sigma}) or sigma_range ({sigma_range}), not both")
    if sigma_range is not None:
        if len(sigma_range) != 2 or not 0 <= sigma_range[0] <= sigma_range[1]:
            raise UserError(
                f"sigma_range must be (low, high) with 0 <= low <= high, got {sigma_range}"
            )
        return None, (float(sigma_range[0]), float(sigma_range[1]))
    sigma = DEFAULT_SIGMA if sigma is None else sigma
    if not (sigma >= 0 and math.isfinite(sigma)):
        raise UserError(f"sigma must be a finite number >= 0, got {sigma}")
    return float(sigma), None


def collate_denoising(samples: Sequence[dict]) -> dict:
    """Stack denoising items; adds ``"system"``, a
    :class:`~deepinv_lab.systems.noise.GaussianNoise` with the per-sample ``(B,)`` noise levels.

    Batch: ``y`` and ``target`` ``(B, C, P, P)``, ``max_value`` ``(B,)``, ``sigma`` ``(B,)``,
    ``system``.
    """
    batch = default_collate(list(samples))
    batch["system"] = GaussianNoise(batch["sigma"])
    return batch


def collate_superresolution(
    samples: Sequence[dict], scale: int = 4, filter: str = "bicubic"
) -> dict:
    """Stack super-resolution items; adds ``"system"``, a ``Downsampling(scale, filter)``.

    ``scale`` and ``filter`` must be those of the dataset (checked against the shapes for
    ``scale``); as a DataLoader's ``collate_fn`` use :class:`SuperResolutionCollate`.

    Batch: ``y`` ``(B, C, P/scale, P/scale)``, ``target`` ``(B, C, P, P)``, ``max_value`` ``(B,)``,
    ``system``.
    """
    return SuperResolutionCollate(scale, filter)(samples)


class SuperResolutionCollate:
    """A picklable ``collate_fn`` for super-resolution items: stacks them and adds one shared
    ``Downsampling(scale, filter)`` instance as ``batch["system"]``.

    Args:
        scale, filter: those of the dataset (e.g. :class:`PairedFolder`).
    """

    def __init__(self, scale: int = 4, filter: str = "bicubic"):
        self.scale = scale
        self.filter = filter
        self.system = Downsampling(scale, filter)

    def __call__(self, samples: Sequence[dict]) -> dict:
        batch = default_collate(list(samples))
        low, high = batch["y"].shape[-1], batch["target"].shape[-1]
        if low * self.scale != high:
            raise ValueError(
                f"SuperResolutionCollate(scale={self.scale}): low-resolution width {low} times "
                f"the scale is not the high-resolution width {high}; use the dataset's scale"
            )
        batch["system"] = self.system
        return batch

    def __repr__(self) -> str:
        return f"{type(self).__name__}(scale={self.scale}, filter={self.filter!r})"


def collate_folder_denoising(samples: Sequence[dict]) -> dict:
    """:func:`collate_denoising` for :class:`ImageFolder` items, with
    a clear error when whole images of different sizes meet in one batch.

    Batch: ``y``, ``target`` ``(B, C, H, W)``, ``max_value``, ``sigma``, ``volume_id``,
    ``slice_num`` ``(B,)``, ``fname`` (list of ``B`` strings), ``system`` (``GaussianNoise``).
    """
    shapes = sorted({tuple(sample["target"].shape) for sample in samples})
    if len(shapes) > 1:
        raise ValueError(
            f"the images of one batch have different shapes {shapes}; use batch_size 1, crops "
            "(patch_size), or the DataModules (which batch whole images by size)"
        )
    return collate_denoising(samples)


class _FolderDataset(Dataset):
    """Split, subset, crop size, item indexing, generators and size buckets shared by the
    folder datasets.

    Item ``i`` is patch ``i % patches_per_image`` of the ``i // patches_per_image``-th selected
    image.
    """

    grayscale: bool

    def __init__(
        self,
        split: str,
        patches_per_image: int,
        seed: int,
        augment: bool,
    ):
        if split not in _SPLITS:
            raise UserError(f"split must be one of {_SPLITS}, got {split!r}")
        self.split = split
        self.training = split == "train"
        self.patches_per_image = positive_int(patches_per_image, "patches_per_image")
        self.seed = int(seed)
        self.augment = bool(augment)
        self.indices: list[int] = []  # positions in the sorted file list of the images used
        # (H, W) of the used images (HR for pairs), from their headers; None without check_files.
        self.sizes: dict[int, tuple[int, int]] | None = None
        self._crop_size: int | None = None  # None: whole images

    def _set_crop_size(self, size: int | None, name: str) -> int | None:
        """Check and keep the side of the square crops, argument ``name``; None (whole images)
        is for validation/test with one item per image."""
        if size is None:
            if self.training:
                raise UserError(
                    f"{name}=None (whole images) is for validation/test only; training "
                    "needs square crops of one size"
                )
            if self.patches_per_image != 1:
                raise UserError(
                    f"patches_per_image ({self.patches_per_image}) must be 1 with {name}=None "
                    "(whole images)"
                )
        else:
            positive_int(size, name)
        self._crop_size = size
        return size

    @property
    def channels(self) -> int:
        """Channels of every item: 1 (grayscale) or 3 (RGB)."""
        return 1 if self.grayscale else 3

    def bucket_keys(self) -> list[tuple[int, int]] | None:
        """One shape key per item for batching whole images of equal size together (whole
        images with known sizes only), else None."""
        if self._crop_size is not None or self.sizes is None:
            return None
        return [self.sizes[i] for i in self.indices for _ in range(self.patches_per_image)]

    def __len__(self) -> int:
        return len(self.indices) * self.patches_per_image

    def _locate(self, index: int) -> tuple[int, int, torch.Generator]:
        """``(file position, patch number, generator)`` of an item."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {int(index)} out of range for {len(self)} items")
        position = int(index) % len(self)
        file_index = self.indices[position // self.patches_per_image]
        number = position % self.patches_per_image
        if self.training:
            generator = item_generator(index)  # the index itself: a SeededIndex carries a seed
        else:  # fixed by the seed and the image, whatever subset it belongs to
            generator = seeded_generator(self.seed, _STREAM_VAL, file_index, number)
        return file_index, number, generator

    def _crop_origin(
        self, shape: tuple[int, ...], patch: int, number: int, generator: torch.Generator
    ) -> tuple[int, int]:
        if self.training:
            return random_crop(shape, patch, generator)
        return grid_crops(shape, patch, self.patches_per_image)[number]

    def _draw_dihedral(self, generator: torch.Generator) -> int:
        if not (self.training and self.augment):
            return 0
        return draw_dihedral(generator)


class ImageFolder(_FolderDataset):
    """Noisy/clean crops of the images in a folder (ImageNet layout), for Gaussian denoising.

    Args:
        root: the folder; images are found recursively
            (:func:`~deepinv_lab.data.image_files.find_images`).
        split: ``"train"`` (random crops, augmentation, fresh noise) or ``"val"``/``"test"``
            (fixed crops and noise).
        patch_size: side ``P`` of the square crops; None (validation/test only) = whole images
            (then batches need equal sizes, or ``batch_size`` 1; the DataModules bucket by size).
        sigma: noise standard deviation in image units ([0, 1]); default ``25 / 255`` when
            ``sigma_range`` is not given.
        sigma_range: ``(low, high)``: draw sigma uniformly per item instead (blind denoising);
            fixed per index for validation items.
        grayscale: BT.601 luma (1 channel) if True, else RGB (3 channels).
        augment: training only: a random one of the 8 flips/90-degree rotations per item.
        patches_per_image: training: random crops per image and epoch; validation: fixed crops
            per image on an even grid (one: the centre).
        num_images: use exactly this many images: the first ``num_images`` of a permutation of
            the file list fixed by ``seed`` (nested: a larger size contains a smaller one);
            None = all.
        seed: fixes the subset and the validation crops and noise.
        extensions: file extensions taken as images.
        check_files: read every used image's header now (mode, size >= ``patch_size``).

    Items are dicts: ``y`` noisy ``(C, P, P)`` float32 (not clipped), ``target`` clean
    ``(C, P, P)``, ``max_value`` ``tensor(1.0)``, ``sigma`` (scalar float32), ``volume_id``
    (int64 scalar, the image's position in the sorted file list), ``slice_num`` (int64 scalar,
    the patch number within the image, 0 with one patch per image), ``fname`` (the path relative
    to ``root``, a string). Batch them with :func:`collate_folder_denoising`
    (``dataset.collate_fn``; :func:`collate_denoising` with a shape
    check).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        patch_size: int | None = 64,
        sigma: float | None = None,
        sigma_range: tuple[float, float] | None = None,
        grayscale: bool = True,
        augment: bool = True,
        patches_per_image: int = 1,
        num_images: int | None = None,
        seed: int = 0,
        extensions: Sequence[str] = IMAGE_EXTENSIONS,
        check_files: bool = True,
    ):
        super().__init__(split, patches_per_image, seed, augment)
        self.sigma, self.sigma_range = check_sigma(sigma, sigma_range)
        self.patch_size = self._set_crop_size(patch_size, "patch_size")
        self.grayscale = bool(grayscale)
        self.files = find_images(root, extensions)
        self.root = Path(root).expanduser().resolve()
        self.names = [path.relative_to(self.root).as_posix() for path in self.files]
        self.indices = _image_subset(len(self.files), num_images, self.seed, str(self.root))
        if check_files:
            self.sizes = {}
            small = []
            for i in self.indices:
                height, width, _ = image_header(self.files[i])
                self.sizes[i] = (height, width)
                if patch_size is not None and min(height, width) < patch_size:
                    small.append(f"{self.names[i]} ({height} x {width})")
            if small:
                raise UserError(
                    f"{len(small)} image(s) under {str(self.root)!r} are smaller than patch_size "
                    f"({patch_size}): {_listing(small)}; lower patch_size or remove them"
                )

    #: The collate function of denoising items.
    collate_fn = staticmethod(collate_folder_denoising)

    def read(self, index: int) -> tuple[dict, torch.Generator]:
        """The clean crop of an item and the generator its further draws continue with: ``x``
        and ``target`` (the same ``(C, P, P)`` crop), ``max_value``, ``volume_id``,
        ``slice_num``, ``fname`` (a :class:`~deepinv_lab.data.sources.SourceSplit`'s items, so
        that :class:`~deepinv_lab.data.sources.FolderImages` measures them with any physics)."""
        file_index, number, generator = self._locate(index)
        path, name = self.files[file_index], self.names[file_index]
        image = read_image(path, self.grayscale)
        size = self.patch_size
        if size is None:
            patch = torch.from_numpy(image)
        else:
            if min(image.shape[1:]) < size:
                raise UserError(
                    f"image {str(path)!r} ({image.shape[1]} x {image.shape[2]}) is smaller than "
                    f"patch_size ({size})"
                )
            top, left = self._crop_origin(image.shape, size, number, generator)
            patch = torch.from_numpy(image[:, top : top + size, left : left + size].copy())
            k = self._draw_dihedral(generator)
            if k:
                patch = apply_dihedral(patch, k).contiguous()
        item = {
            "x": patch,
            "target": patch,
            "max_value": torch.tensor(1.0),
            "volume_id": torch.tensor(file_index, dtype=torch.int64),
            "slice_num": torch.tensor(number, dtype=torch.int64),
            "fname": name,
        }
        return item, generator

    def __getitem__(self, index: int) -> dict:
        item, generator = self.read(index)
        patch = item.pop("x")
        if self.sigma_range is None:
            sigma = torch.tensor(self.sigma, dtype=torch.float32)
        else:
            low, high = self.sigma_range
            sigma = (low + (high - low) * torch.rand((), generator=generator)).to(torch.float32)
        item["y"] = GaussianNoise(sigma)(patch[None], generator=generator)[0]
        item["sigma"] = sigma
        return item


class PairedCollate(SuperResolutionCollate):
    """A picklable ``collate_fn`` for :class:`PairedFolder` items: stacks them (equal shapes
    only; the message says what to change otherwise) and adds one shared
    ``Downsampling(scale, filter)`` as ``batch["system"]``.

    For real LR/HR pairs the System is the **nominal** forward model: the LR files may come from
    another degradation (camera, unknown kernel, noise); it is what baselines such as
    ``Interpolation`` and model-based reconstructions use.

    Batch: ``y`` ``(B, C, h, w)``, ``target`` ``(B, C, scale h, scale w)``, ``max_value``
    ``(B,)``, ``volume_id`` ``(B,)``, ``slice_num`` ``(B,)``, ``fname`` (list of ``B`` strings),
    ``system``.
    """

    def __call__(self, samples: Sequence[dict]) -> dict:
        shapes = sorted({tuple(sample["target"].shape) for sample in samples})
        if len(shapes) > 1:
            raise ValueError(
                f"PairedCollate: the high-resolution images of one batch have different shapes "
                f"{shapes}; use batch_size 1, crops (lr_patch_size), or the DataModules (which "
                "batch whole images by size)"
            )
        return super().__call__(samples)


def collate_paired(samples: Sequence[dict], scale: int = 4, filter: str = "bicubic") -> dict:
    """Stack :class:`PairedFolder` items and add ``batch["system"] = Downsampling(scale,
    filter)``, the nominal forward model (:class:`PairedCollate`; as a DataLoader's
    ``collate_fn`` use ``PairedCollate(scale, filter)`` or ``dataset.collate_fn``)."""
    return PairedCollate(scale, filter)(samples)


class PairedFolder(_FolderDataset):
    """Low/high-resolution image pairs from two folders, for super-resolution (DeepRock-SR and
    DIV2K layout).

    The low-resolution (LR) file of the high-resolution (HR) file ``<sub>/<stem>.<ext>`` under
    ``hr_root`` is ``<sub>/<stem><lr_suffix>.<any ext>`` under ``lr_root`` (e.g. ``0001.png`` and
    ``0001x4.png``). Every HR needs its LR and the converse; each LR must be exactly ``scale``
    times smaller than its HR in both directions.

    Args:
        hr_root, lr_root: the two folders (searched recursively).
        scale: integer ratio of the HR to the LR size.
        split: ``"train"`` (random aligned crops, augmentation) or ``"val"``/``"test"`` (fixed
            aligned crops, or whole images).
        lr_patch_size: side ``p`` of the square LR crops; the HR crops are ``scale * p`` wide,
            at ``scale`` times the LR position. None (validation/test only) = whole images.
        lr_suffix: appended to the HR stem to name the LR file; default ``f"x{scale}"``.
        filter: the filter of the nominal ``Downsampling`` System added by the collate function
            (``"bicubic"``, ``"box"``, ``"none"``); the data are not filtered.
        grayscale, augment, patches_per_image, num_images, seed, extensions, check_files: as in
            :class:`ImageFolder` (the same flip/rotation is applied to both images of a pair;
            ``check_files`` also checks the LR/HR sizes).

    Items are dicts: ``y`` LR ``(C, p, p)`` float32, ``target`` HR ``(C, scale p, scale p)``,
    ``max_value`` ``tensor(1.0)``, ``volume_id`` (int64, the HR's position in the sorted HR
    list), ``slice_num`` (int64, the patch number), ``fname`` (the HR path relative to
    ``hr_root``). Batch them with ``PairedCollate(scale, filter)`` (``dataset.collate_fn``).
    """

    def __init__(
        self,
        hr_root: str | os.PathLike,
        lr_root: str | os.PathLike,
        scale: int = 4,
        split: str = "train",
        lr_patch_size: int | None = 48,
        lr_suffix: str | None = None,
        filter: str = "bicubic",
        grayscale: bool = True,
        augment: bool = True,
        patches_per_image: int = 1,
        num_images: int | None = None,
        seed: int = 0,
        extensions: Sequence[str] = IMAGE_EXTENSIONS,
        check_files: bool = True,
    ):
        super().__init__(split, patches_per_image, seed, augment)
        self.scale = positive_int(scale, "scale")
        Downsampling(scale, filter)  # checks filter
        self.filter = filter
        self.lr_patch_size = self._set_crop_size(lr_patch_size, "lr_patch_size")
        self.lr_suffix = f"x{scale}" if lr_suffix is None else str(lr_suffix)
        self.grayscale = bool(grayscale)
        self.hr_root = Path(hr_root).expanduser().resolve()
        self.lr_root = Path(lr_root).expanduser().resolve()
        self.files = find_images(hr_root, extensions)  # the HR files
        self.names = [path.relative_to(self.hr_root).as_posix() for path in self.files]
        self.lr_files = self._match(find_images(lr_root, extensions))
        self.indices = _image_subset(len(self.files), num_images, self.seed, str(self.hr_root))
        if check_files:
            self._check_sizes()

    def _match(self, lr_files: list[Path]) -> list[Path]:
        """The LR file of each HR file, matched by relative path (class docstring)."""
        return match_low_resolution(
            self.names,
            [Path(name).with_suffix("").as_posix() for name in self.names],
            lr_files,
            self.hr_root,
            self.lr_root,
            self.lr_suffix,
            lambda path: path.relative_to(self.lr_root).with_suffix("").as_posix(),
        )

    def _check_pair(self, i: int, hr_size: tuple[int, int], lr_size: tuple[int, int]) -> None:
        if (lr_size[0] * self.scale, lr_size[1] * self.scale) != tuple(hr_size):
            raise UserError(
                f"low-resolution {str(self.lr_files[i])!r} ({lr_size[0]} x {lr_size[1]}) times "
                f"scale {self.scale} is not the size of high-resolution {str(self.files[i])!r} "
                f"({hr_size[0]} x {hr_size[1]})"
            )
        patch = self.lr_patch_size
        if patch is not None and min(lr_size) < patch:
            raise UserError(
                f"low-resolution {str(self.lr_files[i])!r} ({lr_size[0]} x {lr_size[1]}) is "
                f"smaller than lr_patch_size ({patch})"
            )

    def _check_sizes(self) -> None:
        self.sizes = {}
        for i in self.indices:
            hr_height, hr_width, _ = image_header(self.files[i])
            lr_height, lr_width, _ = image_header(self.lr_files[i])
            self._check_pair(i, (hr_height, hr_width), (lr_height, lr_width))
            self.sizes[i] = (hr_height, hr_width)

    @property
    def collate_fn(self) -> PairedCollate:
        """The collate function of this dataset's ``scale`` and ``filter``."""
        return PairedCollate(self.scale, self.filter)

    def __getitem__(self, index: int) -> dict:
        file_index, number, generator = self._locate(index)
        high = read_image(self.files[file_index], self.grayscale)
        low = read_image(self.lr_files[file_index], self.grayscale)
        self._check_pair(file_index, high.shape[1:], low.shape[1:])
        patch, scale = self.lr_patch_size, self.scale
        if patch is None:
            low_patch, high_patch = torch.from_numpy(low), torch.from_numpy(high)
        else:
            top, left = self._crop_origin(low.shape, patch, number, generator)
            low_patch = torch.from_numpy(low[:, top : top + patch, left : left + patch].copy())
            top, left, size = scale * top, scale * left, scale * patch
            high_patch = torch.from_numpy(high[:, top : top + size, left : left + size].copy())
            k = self._draw_dihedral(generator)
            if k:
                low_patch = apply_dihedral(low_patch, k).contiguous()
                high_patch = apply_dihedral(high_patch, k).contiguous()
        return {
            "y": low_patch,
            "target": high_patch,
            "max_value": torch.tensor(1.0),
            "volume_id": torch.tensor(file_index, dtype=torch.int64),
            "slice_num": torch.tensor(number, dtype=torch.int64),
            "fname": self.names[file_index],
        }
