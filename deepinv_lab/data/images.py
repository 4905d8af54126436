"""Built-in natural images, the ground truth of image restoration, with nothing to download.

The images are the photographs that scikit-image ships inside its wheel (``skimage/data/*.png``,
``*.jpg``). They are read with Pillow (a dependency of scikit-image) straight from the installed
package directory; ``skimage.data``'s fetchers (pooch) are never called, so nothing is downloaded
and scikit-image itself is not imported. Provenance, licenses and the split: ``docs/data.md``.

Conventions:

* **Intensities** are float32 in ``[0, 1]`` (``uint8 / 255``); ``max_value`` (the PSNR/SSIM data
  range) is 1.
* **Grayscale** (default): RGB photographs are reduced to full-range ITU-R BT.601 luma,
  ``Y = 0.299 R + 0.587 G + 0.114 B`` (Pillow's ``"L"`` conversion, MATLAB's ``rgb2gray``),
  computed in float; images are ``(1, H, W)``. With ``grayscale=False`` images are ``(3, H, W)``
  RGB and the grayscale photographs are repeated over the three channels.
* **Patches**: the training split yields random crops (``patches_per_image`` per image and epoch,
  each image equally often) with a random one of the 8 flips/90-degree rotations, drawn anew at
  every read; or, with ``num_patches`` (the DataModules' ``train_size``), a fixed pool of crops
  (positions fixed by ``seed``) whose
  flips/rotations (and the physics' draws) are still drawn anew. The validation split yields
  ``patches_per_image`` fixed crops per image on a regular grid (one crop: the centre), without
  augmentation, with draws fixed by ``seed`` and the item's index.

What is measured of the patches (noise, downsampling, masks) is the physics of the config
(:mod:`deepinv_lab.data.physics`); :class:`~deepinv_lab.data.sources.photos.BuiltinPhotos` is the
source block.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from deepinv_lab.data.checks import positive_int
from deepinv_lab.data.crops import apply_dihedral, draw_dihedral, grid_crops, random_crop
from deepinv_lab.data.image_files import to_channels
from deepinv_lab.data.packages import installed_package_dir
from deepinv_lab.data.samplers import item_generator
from deepinv_lab.data.seeding import seeded_generator
from deepinv_lab.errors import UserError

#: File names in ``skimage/data`` of each split (whole images; no image is in both). Left out:
#: synthetic or binary images (chessboard, phantom, horse, logo, color, lfw_subset); the motion
#: blurred ``clock_motion`` (not a sharp target); ``microaneurysms`` (a 102 x 102 crop);
#: ``text`` and ``page`` (172 and 191 pixels high, they would cap ``patch_size`` below the 192-pixel
#: HR patches of x4 super-resolution); ``motorcycle_right`` (the same scene as
#: ``motorcycle_left``, 19 cm to the side: a near duplicate).
BUILTIN_IMAGES: dict[str, tuple[str, ...]] = {
    "train": (
        "astronaut.png",
        "brick.png",
        "cell.png",
        "grass.png",
        "gravel.png",
        "hubble_deep_field.jpg",
        "ihc.png",
        "moon.png",
        "motorcycle_left.png",
        "retina.jpg",
        "rocket.jpg",
    ),
    "val": ("camera.png", "coins.png", "chelsea.png", "coffee.png"),
}
#: Default ``patches_per_image`` of each split.
DEFAULT_PATCHES_PER_IMAGE = {"train": 64, "val": 8}

_SPLITS = tuple(BUILTIN_IMAGES)
# Independent random streams of one seed.
_STREAM_VAL, _STREAM_POOL = 1, 2


def skimage_data_dir() -> Path:
    """The ``data`` directory of the installed scikit-image package (scikit-image not imported)."""
    return installed_package_dir("skimage", "The built-in natural images") / "data"


def _check_split(split: str) -> None:
    if split not in _SPLITS:
        raise UserError(f"split must be one of {_SPLITS}, got {split!r}")


@functools.cache
def load_builtin_image(name: str, grayscale: bool) -> np.ndarray:
    """One image of ``skimage/data`` as a read-only float32 ``(C, H, W)`` array in ``[0, 1]``."""
    from PIL import Image

    path = skimage_data_dir() / name
    if not path.is_file():
        raise FileNotFoundError(
            f"The built-in image {name!r} is missing from scikit-image's data directory "
            f"{path.parent}; reinstall scikit-image (0.26 ships it in its wheel)"
        )
    with Image.open(path) as image:
        if image.mode not in ("L", "RGB"):
            raise ValueError(f"{path}: expected an 8-bit grayscale or RGB image, got {image.mode}")
        pixels = np.asarray(image, dtype=np.float32) / 255.0
    pixels = to_channels(pixels, grayscale)
    pixels.setflags(write=False)  # shared by every caller through the cache
    return pixels


def load_builtin_images(split: str, grayscale: bool = True) -> list[np.ndarray]:
    """The whole images of a split, in the order of ``BUILTIN_IMAGES[split]``.

    Args:
        split: ``"train"`` or ``"val"``.
        grayscale: BT.601 luma ``(1, H, W)`` if True, else RGB ``(3, H, W)``.

    Returns:
        Read-only float32 arrays in ``[0, 1]`` (cached: loaded once per process).
    """
    _check_split(split)
    return [load_builtin_image(name, bool(grayscale)) for name in BUILTIN_IMAGES[split]]


class BuiltinPatches:
    """Square patches of the built-in images of one split with the train/val crop policy (module
    docstring): the items (a :class:`~deepinv_lab.data.sources.base.SourceSplit`) of
    :class:`~deepinv_lab.data.sources.photos.BuiltinPhotos`.

    Args:
        split: ``"train"`` or ``"val"``.
        patch_size: side ``P`` of the square patches; at most the shorter side of the split's
            smallest image (train 427, val 300).
        grayscale: BT.601 luma (1 channel) if True, else RGB (3 channels).
        patches_per_image: training: random crops per image and epoch (default 64); validation:
            fixed grid crops per image (default 8).
        num_patches: training only, instead of ``patches_per_image``: a fixed pool of
            ``num_patches`` crops (positions drawn once from ``seed``, images taken in turn), the
            training-set size of a scaling-law study; flips/rotations and noise stay fresh.
        seed: seeds the validation items (and the pool of ``num_patches``).
    """

    #: ``patches_per_image`` of each split when none is given.
    default_patches_per_image: dict[str, int] = DEFAULT_PATCHES_PER_IMAGE

    def __init__(
        self,
        split: str,
        patch_size: int,
        grayscale: bool,
        patches_per_image: int | None,
        num_patches: int | None,
        seed: int,
    ):
        _check_split(split)
        positive_int(patch_size, "patch_size")
        if patches_per_image is not None:
            positive_int(patches_per_image, "patches_per_image")
        if num_patches is not None:
            positive_int(num_patches, "num_patches")
            if split != "train":
                raise UserError(
                    f"num_patches (a fixed pool of training crops) is for split='train' only, "
                    f"got split={split!r} and num_patches={num_patches}"
                )
            if patches_per_image is not None:
                raise UserError(
                    f"give either num_patches ({num_patches}, a fixed pool of crops) or "
                    f"patches_per_image ({patches_per_image}, fresh crops per epoch), not both"
                )
        names, self.images = self._source(split, bool(grayscale))
        smallest = min(range(len(names)), key=lambda i: min(self.images[i].shape[1:]))
        limit = min(self.images[smallest].shape[1:])
        if patch_size > limit:
            height, width = self.images[smallest].shape[1:]
            raise UserError(
                f"patch_size ({patch_size}) must be <= {limit}, the shorter side of the smallest "
                f"{split!r} image ({names[smallest]}, {height} x {width})"
            )
        self.split = split
        self.patch_size = patch_size
        self.grayscale = bool(grayscale)
        defaults = self.default_patches_per_image
        self.patches_per_image = defaults[split] if patches_per_image is None else patches_per_image
        self.num_patches = num_patches
        self.seed = int(seed)
        # Fixed crops (image index, top, left): the validation grid or the training pool.
        self.crops: list[tuple[int, int, int]] | None = None
        if split == "val":
            self.crops = [
                (i, top, left)
                for i, image in enumerate(self.images)
                for top, left in grid_crops(image.shape, patch_size, self.patches_per_image)
            ]
        elif num_patches is not None:
            generator = seeded_generator(self.seed, _STREAM_POOL)
            self.crops = []
            for j in range(num_patches):
                i = j % len(self.images)
                self.crops.append((i, *random_crop(self.images[i].shape, patch_size, generator)))

    def _source(self, split: str, grayscale: bool) -> tuple[tuple[str, ...], list[np.ndarray]]:
        """The names and ``(C, H, W)`` arrays of the split's images (subclasses choose others)."""
        return BUILTIN_IMAGES[split], load_builtin_images(split, grayscale)

    @property
    def channels(self) -> int:
        """Channels of every item: 1 (grayscale) or 3 (RGB)."""
        return 1 if self.grayscale else 3

    def __len__(self) -> int:
        if self.crops is not None:
            return len(self.crops)
        return len(self.images) * self.patches_per_image

    def _clean_patch(self, index: int) -> tuple[torch.Tensor, torch.Generator]:
        """The clean (augmented, for training) patch ``(C, P, P)`` and the item's generator."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} patches")
        training = self.split == "train"
        fresh = item_generator(index) if training else None  # before % drops a SeededIndex
        index %= len(self)
        generator = fresh if training else seeded_generator(self.seed, _STREAM_VAL, index)
        if self.crops is not None:
            image_index, top, left = self.crops[index]
        else:
            image_index = index % len(self.images)
            top, left = random_crop(self.images[image_index].shape, self.patch_size, generator)
        size = self.patch_size
        crop = self.images[image_index][:, top : top + size, left : left + size]
        patch = torch.tensor(crop)  # a writable copy of the read-only cached image
        if training:
            patch = apply_dihedral(patch, draw_dihedral(generator)).contiguous()
        return patch, generator

    def read(self, index: int) -> tuple[dict, torch.Generator]:
        patch, generator = self._clean_patch(index)
        # Each patch is its own "volume" for the per-volume metrics (deepinv_lab.training.metrics).
        position = int(index) % len(self)
        item = {
            "x": patch,
            "target": patch,
            "max_value": torch.tensor(1.0),
            "volume_id": torch.tensor(position),
            "slice_num": torch.tensor(0),
            "fname": f"{self.split}_{position:05d}",
        }
        return item, generator
