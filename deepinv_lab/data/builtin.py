"""Built-in data: real brain anatomy simulated into multicoil k-space, with nothing to download.

The images are axial slices of the MNI ICBM 152 non-linear symmetric 2009a T1-weighted template
(Fonov et al., NeuroImage 2011), the 1 mm file that the ``nilearn`` package ships inside its wheel
(``nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz``). It is read with
``nibabel`` straight from the installed package, so no network is needed at run time and nilearn
itself is never imported. Provenance and license: ``docs/data.md``.

Each slice becomes a complex image (magnitude x smooth random phase), is multiplied by smooth
birdcage coil maps, Fourier transformed, corrupted by complex Gaussian noise and undersampled with a
fastMRI mask function -- the System blocks' ``y = M (F S x + n)``.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from deepinv_lab.data.packages import installed_package_dir
from deepinv_lab.data.samplers import item_generator
from deepinv_lab.errors import UserError
from deepinv_lab.functional import fft2c
from deepinv_lab.systems.coils import birdcage_maps
from deepinv_lab.systems.mri import MultiCoilMRI
from deepinv_lab.systems.noise import ComplexGaussianNoise
from deepinv_lab.systems.sampling import create_mask_for_mask_type

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


class SimulatedBrainMRI(Dataset):
    """Multicoil k-space simulated from real brain anatomy (the MNI152 T1 template).

    Training items are augmented freshly each time they are read (left-right flip, intensity scale,
    smooth phase, coil rotation, k-space mask); validation items are the same at every epoch.

    Args:
        split: ``"train"`` or ``"val"``.
        image_size: ``(H, W)`` after the center crop of the 233 x 197 slices and before
            ``downsample``.
        downsample: integer factor of area averaging after the crop (2 -> 2 mm pixels).
        num_coils: number of simulated receive coils.
        mask_type, center_fractions, accelerations: fastMRI mask function, as in
            :func:`deepinv_lab.systems.sampling.create_mask_for_mask_type`.
        noise_sigma: standard deviation of the complex k-space noise, relative to the template's
            maximum intensity (1.0).
        max_phase: amplitude (radians) of the coefficients of the random smooth phase.
        seed: seeds the validation items; training items draw from torch's global RNG, which
            Lightning seeds per worker.

    Items are dicts: ``y`` (the measurements, masked k-space ``(coils, H, W)`` complex),
    ``mask`` ``(1, 1, W)``, ``coil_maps`` ``(coils, H, W)`` complex, ``target`` ``(1, H, W)``
    magnitude, ``max_value`` (the volume's maximum, fastMRI's SSIM data range),
    ``num_low_frequencies``, ``slice_num`` (the template's slice index), ``volume_id`` (0: one
    volume) and ``fname``.
    """

    def __init__(
        self,
        split: str = "train",
        image_size: tuple[int, int] = (224, 192),
        downsample: int = 1,
        num_coils: int = 8,
        mask_type: str = "random",
        center_fractions: tuple[float, ...] = (0.08,),
        accelerations: tuple[int, ...] = (4,),
        noise_sigma: float = 0.002,
        max_phase: float = math.pi / 2,
        seed: int = 0,
    ):
        if not (1 <= image_size[0] <= 233 and 1 <= image_size[1] <= 197):
            raise UserError(
                f"image_size must fit in the 233 x 197 template slices, got {image_size}"
            )
        if downsample < 1 or image_size[0] % downsample or image_size[1] % downsample:
            raise UserError(
                f"downsample ({downsample}) must be a positive divisor of both image_size "
                f"entries {tuple(image_size)}"
            )
        if noise_sigma < 0:
            raise UserError(f"noise_sigma must be >= 0, got {noise_sigma}")
        self.split = split
        self.slice_indices = split_slices(split)
        self.image_size = tuple(image_size)
        self.downsample = downsample
        self.num_coils = num_coils
        self.mask_func = create_mask_for_mask_type(mask_type, center_fractions, accelerations)
        self.noise = ComplexGaussianNoise(noise_sigma)
        self.max_phase = max_phase
        self.seed = seed

    def __len__(self) -> int:
        return len(self.slice_indices)

    def _image(self, index: int) -> torch.Tensor:
        """The cropped, downsampled magnitude slice ``(H, W)``."""
        slices = load_template_slices()
        image = torch.from_numpy(slices[self.slice_indices[index]])
        height, width = self.image_size
        top = (image.shape[0] - height) // 2
        left = (image.shape[1] - width) // 2
        image = image[top : top + height, left : left + width]
        if self.downsample > 1:
            image = F.avg_pool2d(image[None, None], self.downsample)[0, 0]
        return image

    def __getitem__(self, index: int) -> dict:
        training = self.split == "train"
        if training:
            generator = item_generator(index)
        else:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        magnitude = self._image(index)
        max_value = 1.0
        if training:
            if torch.rand((), generator=generator) < 0.5:
                magnitude = magnitude.flip(-1)
            scale = float(0.75 + 0.5 * torch.rand((), generator=generator))
            magnitude, max_value = magnitude * scale, max_value * scale
        shape = tuple(magnitude.shape)
        image = torch.polar(magnitude, smooth_phase(shape, generator, self.max_phase))
        rotation = float(2 * math.pi * torch.rand((), generator=generator))
        coil_maps = birdcage_maps(self.num_coils, shape, rotation=rotation)

        mask_seed = int(torch.randint(0, 2**31 - 1, (), generator=generator))
        kspace_shape = (self.num_coils, *shape, 2)  # fastMRI's (coils, H, W, re/im) layout
        mask, num_low_frequencies = self.mask_func(kspace_shape, seed=mask_seed)
        mask = mask.reshape(1, 1, shape[-1]).float()

        system = MultiCoilMRI(coil_maps[None], mask[None])
        full_kspace = fft2c(coil_maps * image)
        noisy = self.noise(full_kspace, generator=generator)
        kspace = system.sampling(noisy[None])[0]
        return {
            "y": kspace,
            "mask": mask,
            "coil_maps": coil_maps,
            "target": magnitude[None],
            "max_value": torch.tensor(max_value),
            "num_low_frequencies": torch.tensor(int(num_low_frequencies)),
            "slice_num": torch.tensor(self.slice_indices[index]),
            # the template is one volume: metrics are fastMRI's per-volume ones over its slices
            "volume_id": torch.tensor(0),
            "fname": f"mni152_t1_{self.split}",
        }
