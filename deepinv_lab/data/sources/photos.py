"""Sources of natural and micro-CT-like images: the built-in photographs and the built-in
granular texture (:mod:`deepinv_lab.data.images`, :mod:`deepinv_lab.data.microct`)."""

from __future__ import annotations

from deepinv_lab.data.checks import positive_int
from deepinv_lab.data.images import BuiltinPatches
from deepinv_lab.data.microct import MicroCTPatches
from deepinv_lab.data.sources.base import Source, SourceSplit, check_split
from deepinv_lab.errors import UserError


def _positive_or_none(value: int | None, name: str) -> None:
    if value is not None:
        positive_int(value, name)


class BuiltinPhotos(Source):
    """Patches of the photographs that scikit-image ships (11 training, 4 validation images;
    docs/data.md): random crops with random flips/rotations for training, a fixed grid of crops
    for validation.

    Args:
        patch_size: side of the square patches (at most 427 for training, 300 for validation).
        grayscale: BT.601 luma ``(1, P, P)`` if True, else RGB ``(3, P, P)``.
        patches_per_image: training crops per image and epoch (default 64).
        val_patches_per_image: fixed validation crops per image (default 8).
        seed: seeds the validation crops and the fixed pool of ``train_size`` crops.

    ``train_size`` (of the DataModule) is a fixed pool of that many distinct training crops, the
    training-set size of scaling-law studies; flips/rotations and the physics' draws stay fresh.
    """

    patches = BuiltinPatches

    def __init__(
        self,
        patch_size: int = 64,
        grayscale: bool = True,
        patches_per_image: int | None = None,
        val_patches_per_image: int | None = None,
        seed: int = 0,
    ):
        positive_int(patch_size, "patch_size")
        _positive_or_none(patches_per_image, "patches_per_image")
        _positive_or_none(val_patches_per_image, "val_patches_per_image")
        self.patch_size = patch_size
        self.grayscale = bool(grayscale)
        self.patches_per_image = patches_per_image
        self.val_patches_per_image = val_patches_per_image
        self.seed = int(seed)

    def split(
        self, split: str, train_size: int | None = None, complex_images: bool = False
    ) -> SourceSplit:
        check_split(split)
        if complex_images:
            raise UserError(
                f"{type(self).__name__} gives real images, and the physics measures complex ones "
                "(MRI): use the source BuiltinBrain"
            )
        if train_size is not None:
            positive_int(train_size, "data.train_size")
        if train_size is not None and self.patches_per_image is not None:
            raise UserError(
                f"give either data.train_size ({train_size}, a fixed pool of training patches) "
                f"or source patches_per_image ({self.patches_per_image}, fresh random patches "
                "every epoch), not both"
            )
        if split == "val":
            return self.patches("val", self.patch_size, self.grayscale,
                                self.val_patches_per_image, None, self.seed)  # fmt: skip
        return self.patches(
            "train", self.patch_size, self.grayscale, self.patches_per_image, train_size, self.seed
        )


class BuiltinMicroCT(BuiltinPhotos):
    """Crops of a real granular texture, the built-in stand-in for rock micro-CT
    (:mod:`deepinv_lab.data.microct`): training crops from rows ``[0, 368)``, validation crops
    from rows ``[384, 512)`` of one photograph; grayscale.

    Args: those of :class:`BuiltinPhotos` but ``grayscale`` (always True); validation
    ``patch_size`` at most 128. Defaults: 256 training crops per epoch, 8 fixed validation crops.
    """

    patches = MicroCTPatches

    def __init__(
        self,
        patch_size: int = 96,
        patches_per_image: int | None = None,
        val_patches_per_image: int | None = None,
        seed: int = 0,
    ):
        super().__init__(patch_size, True, patches_per_image, val_patches_per_image, seed)
