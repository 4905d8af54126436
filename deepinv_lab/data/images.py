"""Built-in natural images for denoising and super-resolution, with nothing to download.

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
  every read; or, with ``num_patches``, a fixed pool of crops (positions fixed by ``seed``) whose
  flips/rotations and noise are still drawn anew. The validation split yields ``patches_per_image``
  fixed crops per image on a regular grid (one crop: the centre), without augmentation, with noise
  fixed by ``seed`` and the item's index.
* **Noise** (denoising): ``y = x + n``, ``n ~ N(0, sigma^2)`` through
  :class:`~deepinv_lab.systems.noise.GaussianNoise`; ``y`` is not clipped to ``[0, 1]``.
* **Downsampling** (super-resolution): ``y = Downsampling(scale, filter)(x)``, the System block of
  :mod:`deepinv_lab.systems.downsampling` (circular borders), applied to the high-resolution
  patch, noiseless.

Randomness of training items comes from torch's global RNG, which DataLoader workers (and
Lightning's ``seed_everything(workers=True)``) seed per worker.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from deepinv_lab.data.checks import positive_int
from deepinv_lab.data.crops import apply_dihedral, draw_dihedral, grid_crops, random_crop
from deepinv_lab.data.image_files import to_channels
from deepinv_lab.data.packages import installed_package_dir
from deepinv_lab.data.samplers import item_generator
from deepinv_lab.data.seeding import seeded_generator
from deepinv_lab.errors import UserError
from deepinv_lab.systems.downsampling import Downsampling
from deepinv_lab.systems.noise import GaussianNoise

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
#: Default noise level of :class:`BuiltinDenoising` (25 on the 0-255 scale).
DEFAULT_SIGMA = 25 / 255

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
        scale, filter: those of the dataset (:class:`BuiltinSuperResolution`).
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


class _BuiltinPatches(Dataset):
    """Square patches of the built-in images with the train/val crop policy (module docstring).

    Subclasses turn a clean patch ``(C, P, P)`` and a generator into an item (:meth:`_item`).
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

    def __getitem__(self, index: int) -> dict:
        patch, generator = self._clean_patch(index)
        item = self._item(patch, generator)
        # Each patch is its own "volume" for the per-volume metrics (deepinv_lab.training.metrics).
        position = int(index) % len(self)
        item.update(volume_id=torch.tensor(position), slice_num=torch.tensor(0))
        item["fname"] = f"{self.split}_{position:05d}"
        return item

    def _item(self, patch: torch.Tensor, generator: torch.Generator) -> dict:
        """The item made from a clean patch: each task (denoising, SR) defines its own."""
        raise NotImplementedError(f"{type(self).__name__} must implement _item(patch, generator)")


class BuiltinDenoising(_BuiltinPatches):
    """Noisy/clean patches of the built-in natural images, for (blind) Gaussian denoising.

    Args:
        split: ``"train"`` or ``"val"`` (``BUILTIN_IMAGES``).
        patch_size: side ``P`` of the square patches; at most the shorter side of the split's
            smallest image (train 427, val 300).
        sigma: noise standard deviation in image units (the images span ``[0, 1]``); default
            ``25 / 255`` when ``sigma_range`` is not given.
        sigma_range: ``(low, high)``: instead of ``sigma``, draw sigma uniformly per item (blind
            denoisers); fixed per index for validation items.
        grayscale: BT.601 luma (1 channel) if True, else RGB (3 channels).
        patches_per_image: training: random crops per image and epoch (default 64); validation:
            fixed grid crops per image (default 8).
        num_patches: training only, instead of ``patches_per_image``: a fixed pool of
            ``num_patches`` crops (positions drawn once from ``seed``, images taken in turn), the
            training-set size of a scaling-law study; flips/rotations and noise stay fresh.
        seed: seeds the validation items (and the pool of ``num_patches``); fresh training items
            draw from torch's global RNG.

    Items are dicts: ``y`` noisy ``(C, P, P)`` float32, ``target`` clean ``(C, P, P)`` float32,
    ``max_value`` ``tensor(1.0)``, ``sigma`` (scalar tensor, the level used). Batch them with
    :func:`collate_denoising`.
    """

    def __init__(
        self,
        split: str = "train",
        patch_size: int = 64,
        sigma: float | None = None,
        sigma_range: tuple[float, float] | None = None,
        grayscale: bool = True,
        patches_per_image: int | None = None,
        num_patches: int | None = None,
        seed: int = 0,
    ):
        self.sigma, self.sigma_range = check_sigma(sigma, sigma_range)
        super().__init__(split, patch_size, grayscale, patches_per_image, num_patches, seed)

    #: The collate function of denoising items.
    collate_fn = staticmethod(collate_denoising)

    def _item(self, patch: torch.Tensor, generator: torch.Generator) -> dict:
        if self.sigma_range is None:
            sigma = torch.tensor(self.sigma)
        else:
            low, high = self.sigma_range
            sigma = low + (high - low) * torch.rand((), generator=generator)
        noisy = GaussianNoise(sigma)(patch[None], generator=generator)[0]
        return {
            "y": noisy,
            "target": patch,
            "max_value": torch.tensor(1.0),
            "sigma": sigma.to(torch.float32),
        }


class BuiltinSuperResolution(_BuiltinPatches):
    """Low/high-resolution patch pairs of the built-in natural images, for super-resolution.

    The low-resolution patch is the :class:`~deepinv_lab.systems.downsampling.Downsampling`
    System applied to the high-resolution one, exactly: ``y = Downsampling(scale, filter)(x)``
    (circular borders; noiseless).

    Args:
        split: ``"train"`` or ``"val"`` (``BUILTIN_IMAGES``).
        patch_size: side ``P`` of the square high-resolution patches, a multiple of ``scale``; at
            most the shorter side of the split's smallest image (train 427, val 300).
        scale: integer downsampling factor; low-resolution patches are ``P / scale`` pixels wide.
        filter: ``"bicubic"`` (MATLAB ``imresize`` antialiasing), ``"box"`` or ``"none"``.
        grayscale, patches_per_image, num_patches, seed: as in :class:`BuiltinDenoising`.

    Items are dicts: ``y`` low-resolution ``(C, P/scale, P/scale)`` float32, ``target``
    high-resolution ``(C, P, P)`` float32, ``max_value`` ``tensor(1.0)``. Batch them with
    ``SuperResolutionCollate(scale, filter)``, also available as ``dataset.collate_fn``.
    """

    def __init__(
        self,
        split: str = "train",
        patch_size: int = 96,
        scale: int = 4,
        filter: str = "bicubic",
        grayscale: bool = True,
        patches_per_image: int | None = None,
        num_patches: int | None = None,
        seed: int = 0,
    ):
        positive_int(scale, "scale")
        positive_int(patch_size, "patch_size")
        if patch_size % scale:
            raise UserError(
                f"patch_size ({patch_size}) must be a multiple of scale ({scale}); e.g. "
                f"{patch_size - patch_size % scale} or {patch_size - patch_size % scale + scale}"
            )
        self.downsampling = Downsampling(scale, filter)  # also checks filter
        self.scale = scale
        self.filter = filter
        super().__init__(split, patch_size, grayscale, patches_per_image, num_patches, seed)

    @property
    def collate_fn(self) -> SuperResolutionCollate:
        """The collate function of this dataset's ``scale`` and ``filter``."""
        return SuperResolutionCollate(self.scale, self.filter)

    def _item(self, patch: torch.Tensor, generator: torch.Generator) -> dict:
        with torch.no_grad():
            low_resolution = self.downsampling(patch[None])[0]
        return {"y": low_resolution, "target": patch, "max_value": torch.tensor(1.0)}
