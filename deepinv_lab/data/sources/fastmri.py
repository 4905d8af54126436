"""fastMRI volumes as a ground-truth source: the coil images of their fully sampled k-space, so
that new masks, trajectories and noise are simulated from real multicoil data."""

from __future__ import annotations

from pathlib import Path

import h5py
import torch

from deepinv_lab.data.fastmri.index import default_cache_file, index_volumes, list_h5_files
from deepinv_lab.data.fastmri.layout import FastMRIDataError
from deepinv_lab.data.fastmri.volumes import VolumeInfo
from deepinv_lab.data.fastmri_datamodule import find_split_folder
from deepinv_lab.data.sources.base import (
    Source,
    SourceSplit,
    SubsetSplit,
    check_split,
    split_generator,
)
from deepinv_lab.data.subsets import nested_subset
from deepinv_lab.errors import UserError
from deepinv_lab.functional import center_crop, ifft2c, rss

#: the random stream of the validation items' draws
_STREAM_VAL = 7


class FastMRICoilImages(Source):
    """The coil images of fully sampled fastMRI k-space (train/val files), one item per slice.

    Each slice's k-space ``(coils, H, W)`` is inverse Fourier transformed
    (:func:`~deepinv_lab.functional.ifft2c`) to coil images over the whole acquired field of
    view (e.g. 640 x 368 with fastMRI's readout oversampling): cropping them would cut the object
    at the crop's edges (a knee runs through the reconstruction field of view), which no
    acquisition does and which spoils coil-map estimates. The physics then measures these coil
    images with its own mask or trajectory and noise: a multicoil physics acquires them coil by
    coil and ignores its ``coils`` (:class:`~deepinv_lab.data.physics.CartesianMRIPhysics`,
    :class:`~deepinv_lab.data.physics.NonCartesianMRIPhysics`), and its ``estimate_maps`` gives
    the Recon coil maps estimated from the simulated measurements. Single-coil files give one
    complex image per slice.

    Items: ``x`` complex64 ``(coils, H, W)``; ``target`` the root-sum-of-squares image
    center-cropped to ``crop_size`` ``(1, h, w)``, which is the file's ``reconstruction_rss`` for
    the default crop (reconstructions are cropped to it before the metrics, as fastMRI does);
    with ``normalize`` both are divided by the volume's ``max`` attribute (so ``max_value`` is 1
    and noise levels mean what they mean for the built-in images), else ``max_value`` is
    ``max``.

    Args:
        root: a folder holding ``{challenge}_train`` and ``{challenge}_val`` (or fastMRI's
            ``knee_multicoil_train``, ...).
        train_path, val_path: explicit split folders, overriding ``root``'s.
        challenge: ``"multicoil"`` or ``"singlecoil"`` (names the split folders; the files'
            k-space must match).
        crop_size: ``(h, w)`` of the target; None: the header's reconstruction size (clipped to
            the k-space matrix).
        normalize: divide by the volume's ``max`` attribute.
        acquisitions: keep only these acquisitions (e.g. ``["AXT2"]``).
        seed: the order in which ``train_size`` takes training slices (nested subsets), and the
            validation items' draws.
        use_dataset_cache, cache_dir: the index cache of each split (headers and shapes), never
            in the data folders (:func:`~deepinv_lab.data.fastmri.index.default_cache_file`).

    ``train_size`` (of the DataModule) takes that many training slices. Files are opened
    read-only; test-set files (k-space already undersampled, a ``mask`` dataset) are refused.
    """

    gives_complex = True

    def __init__(
        self,
        root: str | None = None,
        train_path: str | None = None,
        val_path: str | None = None,
        challenge: str = "multicoil",
        crop_size: tuple[int, int] | None = None,
        normalize: bool = True,
        acquisitions: list[str] | None = None,
        seed: int = 0,
        use_dataset_cache: bool = True,
        cache_dir: str | None = None,
    ):
        if challenge not in ("multicoil", "singlecoil"):
            raise UserError(
                f"FastMRICoilImages: challenge must be 'multicoil' or 'singlecoil', got "
                f"{challenge!r}"
            )
        if crop_size is not None:
            crop_size = tuple(int(n) for n in crop_size)
            if len(crop_size) != 2 or min(crop_size) < 1:
                raise UserError(
                    f"FastMRICoilImages: crop_size must be (h, w) of positive sizes, got "
                    f"{list(crop_size)}"
                )
        self.challenge = challenge
        self.crop_size = crop_size
        self.normalize = bool(normalize)
        self.acquisitions = None if acquisitions is None else list(acquisitions)
        self.seed = int(seed)
        self.use_dataset_cache = use_dataset_cache
        self.cache_dir = cache_dir
        self.folders = {
            split: self._folder(root, path, split)
            for split, path in (("train", train_path), ("val", val_path))
        }

    def _folder(self, root: str | None, path: str | None, split: str) -> Path:
        if path is not None:
            if not Path(path).is_dir():
                raise UserError(f"FastMRICoilImages: {split}_path {path} is not a folder")
            return Path(path)
        if root is None:
            raise UserError(
                f"FastMRICoilImages: no {split} data: set root (a folder holding "
                f"{self.challenge}_train and {self.challenge}_val) or {split}_path"
            )
        if not Path(root).is_dir():
            raise UserError(f"FastMRICoilImages: root {root} is not a folder")
        folder = find_split_folder(Path(root), self.challenge, split)
        if folder is None:
            raise UserError(
                f"FastMRICoilImages: root {root} has no {self.challenge}_{split} (or "
                f"*_{self.challenge}_{split}) folder; set {split}_path"
            )
        return folder

    def describe(self) -> str:
        return f"FastMRICoilImages({self.folders['val'].parent})"

    def split(
        self, split: str, train_size: int | None = None, complex_images: bool = False
    ) -> SourceSplit:
        check_split(split)
        if not complex_images:
            raise UserError(
                "FastMRICoilImages gives complex coil images: measure them with an MRI physics "
                "(CartesianMRIPhysics, SingleCoilMRIPhysics, NonCartesianMRIPhysics)"
            )
        items = CoilImageSlices(self, split)
        if train_size is None or split != "train":
            return items
        if isinstance(train_size, bool) or not 1 <= train_size <= len(items):
            raise UserError(
                f"data.train_size must be between 1 and {len(items)} (the training slices of "
                f"{self.folders['train']}), got {train_size}"
            )
        order = nested_subset(len(items), train_size, torch.Generator().manual_seed(self.seed))
        return SubsetSplit(items, order)


class CoilImageSlices(SourceSplit):
    """The slices of one split of :class:`FastMRICoilImages`."""

    def __init__(self, source: FastMRICoilImages, split: str):
        self.source = source
        self.split = split
        folder = source.folders[split]
        cache = None
        if source.use_dataset_cache:
            cache = default_cache_file(folder)
            if source.cache_dir is not None:
                cache = Path(source.cache_dir) / cache.name
        self.volumes = index_volumes(list_h5_files(folder), cache)
        kept = [v for v, info in enumerate(self.volumes) if self._check(info)]
        if not kept:
            found = sorted({info.acquisition for info in self.volumes})
            raise UserError(
                f"FastMRICoilImages: no volume of {folder} has an acquisition in "
                f"{source.acquisitions}; the acquisitions found are {found}"
            )
        self.samples = [(v, s) for v in kept for s in range(self.volumes[v].num_slices)]

    def _check(self, info: VolumeInfo) -> bool:
        """Whether the volume is kept (the acquisitions filter); errors name unusable files."""
        multicoil = len(info.kspace_shape) == 3
        if multicoil != (self.source.challenge == "multicoil"):
            raise FastMRIDataError(
                f"{info.path}: k-space slices of shape {info.kspace_shape} are not "
                f"{self.source.challenge} data; set FastMRICoilImages challenge"
            )
        if info.has_mask:
            raise FastMRIDataError(
                f"{info.path}: a test-set file (its k-space is undersampled, it has a 'mask'); "
                "FastMRICoilImages needs fully sampled train/val files"
            )
        if self.source.normalize and "max" not in info.attrs:
            raise FastMRIDataError(
                f"{info.path}: no attribute 'max' to normalize by; set FastMRICoilImages "
                "normalize=false"
            )
        crop = self.crop(info)
        if crop[0] > info.kspace_shape[-2] or crop[1] > info.kspace_shape[-1]:
            raise UserError(
                f"FastMRICoilImages: crop_size {list(crop)} is larger than the k-space matrix "
                f"{list(info.kspace_shape[-2:])} of {info.path}"
            )
        return self.source.acquisitions is None or info.acquisition in self.source.acquisitions

    def crop(self, info: VolumeInfo) -> tuple[int, int]:
        if self.source.crop_size is not None:
            return self.source.crop_size
        height, width = info.kspace_shape[-2:]
        return (min(info.recon_size[0], height), min(info.recon_size[1], width))

    def __len__(self) -> int:
        return len(self.samples)

    def bucket_keys(self) -> list[tuple[int, ...]]:
        """``(coils, H, W, h, w)`` of each item, from the index: items of one key batch
        together."""
        keys = []
        for volume_id, _ in self.samples:
            info = self.volumes[volume_id]
            shape = info.kspace_shape if len(info.kspace_shape) == 3 else (1, *info.kspace_shape)
            keys.append((*shape, *self.crop(info)))
        return keys

    def read(self, index: int) -> tuple[dict, torch.Generator]:
        position = int(index)
        if self.split == "train":
            generator = split_generator("train", index, self.source.seed, _STREAM_VAL)
        else:
            generator = split_generator("val", position, self.source.seed, _STREAM_VAL)
        volume_id, slice_num = self.samples[position]
        info = self.volumes[volume_id]
        try:
            with h5py.File(info.path, "r") as f:
                kspace = torch.from_numpy(f["kspace"][slice_num]).to(torch.complex64)
        except Exception as error:
            raise FastMRIDataError(
                f"{info.path}, slice {slice_num}: reading failed ({type(error).__name__}: "
                f"{error}); the file changed or was corrupted after it was indexed"
            ) from error
        if kspace.ndim == 2:
            kspace = kspace[None]
        images = ifft2c(kspace)
        max_value = float(info.attrs.get("max", 0.0))
        if self.source.normalize:
            images, max_value = images / max_value, 1.0
        target = center_crop(rss(images, dim=0, keepdim=True), self.crop(info))
        if not self.source.normalize and max_value <= 0:
            max_value = float(target.max())
        item = {
            "x": images.contiguous(),
            "target": target,
            "max_value": torch.tensor(max_value, dtype=torch.float32),
            "slice_num": torch.tensor(slice_num),
            "volume_id": torch.tensor(volume_id),
            "fname": Path(info.path).name,
        }
        return item, generator
