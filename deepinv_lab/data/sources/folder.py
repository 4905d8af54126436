"""A user's image folders as a ground-truth source: crops of the images of a training and a
validation folder, colour or grey, measured by any image physics."""

from __future__ import annotations

from collections.abc import Sequence

from deepinv_lab.data.checks import positive_int
from deepinv_lab.data.folder_datamodules import (
    check_whole_images,
    evaluation_crops,
    image_folder_roots,
)
from deepinv_lab.data.folders import ImageFolder, TooFewImagesError
from deepinv_lab.data.image_files import IMAGE_EXTENSIONS
from deepinv_lab.data.sources.base import Source, SourceSplit, check_split
from deepinv_lab.errors import UserError


class FolderImages(Source):
    """Crops of the images in a training and a validation folder (ImageNet layout:
    ``root/train/**``, ``root/val/**``; found recursively), the clean images of
    :class:`~deepinv_lab.data.folders.ImageFolder`: random crops with a random flip/rotation for
    training, a fixed grid of crops (or whole images) for validation.

    Args:
        root: a folder holding ``train/`` and ``val/``, the default of the two folders below.
        train_root, val_root: the training and validation folders.
        patch_size: side of the square training crops.
        val_patch_size: side of the validation crops; None = ``patch_size``.
        val_whole_images: validate on whole images (batched by size; ``batch_size`` 1 without
            ``check_files``).
        grayscale: BT.601 luma ``(1, P, P)`` if True, else RGB ``(3, P, P)``.
        augment: a random one of the 8 flips/90-degree rotations of each training crop.
        patches_per_image: random training crops per image and epoch.
        val_patches_per_image: fixed validation crops per image (one: the centre).
        val_size: validation images, a seeded subset; None = all.
        seed: fixes the subsets and the validation crops.
        extensions: file extensions taken as images.
        check_files: read every used image's header now (errors at start-up).

    ``train_size`` (of the DataModule) is the number of distinct training images: the first of a
    permutation seeded by ``seed``, nested for growing sizes (scaling-law studies).
    """

    def __init__(
        self,
        root: str | None = None,
        train_root: str | None = None,
        val_root: str | None = None,
        patch_size: int = 64,
        val_patch_size: int | None = None,
        val_whole_images: bool = False,
        grayscale: bool = True,
        augment: bool = True,
        patches_per_image: int = 1,
        val_patches_per_image: int = 1,
        val_size: int | None = None,
        seed: int = 0,
        extensions: Sequence[str] = IMAGE_EXTENSIONS,
        check_files: bool = True,
    ):
        positive_int(patch_size, "patch_size")
        positive_int(patches_per_image, "patches_per_image")
        positive_int(val_patches_per_image, "val_patches_per_image")
        for name, value in (("val_patch_size", val_patch_size), ("val_size", val_size)):
            if value is not None:
                positive_int(value, name)
        self.train_root, self.val_root, _ = image_folder_roots(root, train_root, val_root)
        self.patch_size = patch_size
        self.val_crop, self.val_crops = evaluation_crops(
            val_whole_images, val_patch_size, patch_size, val_patches_per_image
        )
        self.val_whole_images = bool(val_whole_images)
        self.grayscale = bool(grayscale)
        self.augment = bool(augment)
        self.patches_per_image = patches_per_image
        self.val_size = val_size
        self.seed = int(seed)
        self.extensions = tuple(extensions)
        self.check_files = bool(check_files)

    def describe(self) -> str:
        return f"FolderImages({self.val_root})"

    def check_batch_size(self, batch_size: int) -> None:
        check_whole_images(self.val_whole_images, self.check_files, batch_size)

    def split(
        self, split: str, train_size: int | None = None, complex_images: bool = False
    ) -> SourceSplit:
        check_split(split)
        if complex_images:
            raise UserError(
                "FolderImages gives real images, and the physics measures complex ones (MRI): "
                "use the source BuiltinBrain or FastMRICoilImages"
            )
        common = dict(grayscale=self.grayscale, seed=self.seed, extensions=self.extensions,
                      check_files=self.check_files)  # fmt: skip
        training = split == "train"
        name = "train_root" if training else "val_root"
        try:
            if training:
                return ImageFolder(self.train_root, "train", self.patch_size,
                                   augment=self.augment, patches_per_image=self.patches_per_image,
                                   num_images=train_size, **common)  # fmt: skip
            return ImageFolder(self.val_root, "val", self.val_crop,
                               patches_per_image=self.val_crops, num_images=self.val_size,
                               **common)  # fmt: skip
        except TooFewImagesError as error:
            size = "data.train_size" if training else "source val_size"
            raise UserError(
                f"{size} is {error.requested}, more than the {error.available} images found "
                f"under {error.root!r} (FolderImages {name})"
            ) from error
        except UserError as error:
            raise UserError(f"FolderImages {name}: {error}") from error
