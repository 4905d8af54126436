"""Built-in data: real brain anatomy simulated into multicoil k-space, with nothing to download.

The images are axial slices of the MNI ICBM 152 non-linear symmetric 2009a T1-weighted template
(Fonov et al., NeuroImage 2011), the 1 mm file that the ``nilearn`` package ships inside its wheel
(``nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz``). It is read with
``nibabel`` straight from the installed package, so no network is needed at run time and nilearn
itself is never imported. Provenance and license: ``docs/data.md``.

The slices are the ground truth of :class:`~deepinv_lab.data.sources.brain.BuiltinBrain`: complex
images (magnitude x smooth random phase) for MRI physics, e.g. multicoil k-space
``y = M (F S x + n)`` with birdcage coil maps (:mod:`deepinv_lab.data.physics`).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from deepinv_lab.data.packages import installed_package_dir
from deepinv_lab.errors import UserError

TEMPLATE_FILE = "datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
#: Axial slices with brain in most of the field of view.
SLICE_RANGE = (20, 150)
#: Deterministic split: within every block of 10 slices, slice 5 is for validation and its two
#: neighbours are left out, so that no validation slice has a training slice 1 mm away.
SPLIT_PERIOD, VAL_OFFSET = 10, 5


def template_path() -> Path:
    """Path of the MNI152 T1 template inside the installed nilearn package."""
    path = (
        installed_package_dir("nilearn", "The built-in MRI data (MNI152 template)") / TEMPLATE_FILE
    )
    if not path.is_file():
        raise FileNotFoundError(f"The MNI152 template is missing from the nilearn package: {path}")
    return path


@functools.lru_cache(maxsize=1)
def load_template_slices() -> np.ndarray:
    """All axial slices of the template as float32 ``(Z, H=233, W=197)`` in ``[0, 1]``,
    anterior at the top, the patient's left on the image's right (radiological view)."""
    import nibabel

    volume = np.asarray(nibabel.load(template_path()).dataobj, dtype=np.float32)  # (x, y, z), RAS
    slices = np.ascontiguousarray(volume.transpose(2, 1, 0)[:, ::-1, :])  # (z, y flipped, x)
    return slices / slices.max()


def split_slices(split: str) -> list[int]:
    """The template's slice indices of the ``"train"`` or ``"val"`` split."""
    first, stop = SLICE_RANGE
    position = [(z - first) % SPLIT_PERIOD for z in range(first, stop)]
    if split == "val":
        return [z for z, p in zip(range(first, stop), position, strict=True) if p == VAL_OFFSET]
    if split == "train":
        excluded = {VAL_OFFSET - 1, VAL_OFFSET, VAL_OFFSET + 1}
        return [z for z, p in zip(range(first, stop), position, strict=True) if p not in excluded]
    raise UserError(f"split must be 'train' or 'val', got {split!r}")


def smooth_phase(
    shape: tuple[int, int], generator: torch.Generator, max_phase: float
) -> torch.Tensor:
    """A random smooth phase map: a 2nd-order polynomial with coefficients up to ``max_phase``."""
    height, width = shape
    y = torch.linspace(-1, 1, height)[:, None]
    x = torch.linspace(-1, 1, width)[None, :]
    basis = torch.stack(torch.broadcast_tensors(torch.ones_like(x * y), x, y, x * y, x**2, y**2))
    coefficients = (2 * torch.rand(6, 1, 1, generator=generator) - 1) * max_phase
    return (coefficients * basis).sum(0)
