"""Built-in data for micro-CT-style super-resolution: a real granular texture, nothing to
download.

Rock micro-CT images (e.g. the sandstone, carbonate and coal slices of DeepRock-SR) show grains,
pores and their boundaries. The installed packages of this project carry one photograph with that
structure: ``gravel.png`` of scikit-image's wheel (CC0Textures "Gravel04", CC0; 512 x 512
grayscale; see docs/data.md), loose angular grains of a few to a few tens of pixels with dark gaps
between them. The other textures there (bricks, grass) are regular or fibrous, not granular.

One photograph gives both splits by rows: training crops come from rows ``[0, 368)``, validation
crops from rows ``[384, 512)``, so no validation pixel is within 16 rows of a training pixel.
Crops are grayscale; the low-resolution input is the physics of the config (x4 bicubic
``Downsampling`` in the micro-CT configs). For real micro-CT pairs use the paired-folder data
(:class:`~deepinv_lab.data.folder_datamodules.PairedSRDataModule`, DeepRock-SR layout).
"""

from __future__ import annotations

import numpy as np

from deepinv_lab.data.images import BuiltinPatches, load_builtin_image
from deepinv_lab.errors import UserError

#: The texture files (in ``skimage/data``) and the rows of each split.
MICROCT_TEXTURES = ("gravel.png",)
MICROCT_ROWS = {"train": (0, 368), "val": (384, 512)}


class MicroCTPatches(BuiltinPatches):
    """Crops of the granular texture (module docstring): the items of
    :class:`~deepinv_lab.data.sources.photos.BuiltinMicroCT`. Arguments as
    :class:`~deepinv_lab.data.images.BuiltinPatches`; ``grayscale`` must be True. Defaults: 256
    training crops per epoch; 8 fixed validation crops, the first 8 of a 3 x 3 grid over the
    128 x 512 validation strip."""

    default_patches_per_image = {"train": 256, "val": 8}

    def _source(self, split: str, grayscale: bool) -> tuple[tuple[str, ...], list[np.ndarray]]:
        if not grayscale:
            raise UserError("MicroCTPatches: micro-CT images are grayscale; keep grayscale=True")
        top, bottom = MICROCT_ROWS[split]
        images = [load_builtin_image(name, True)[:, top:bottom] for name in MICROCT_TEXTURES]
        return MICROCT_TEXTURES, images
