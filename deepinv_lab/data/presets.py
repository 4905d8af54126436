"""The built-in experiments as presets of :class:`~deepinv_lab.data.simulation_datamodule.
SimulationDataModule`: a fixed source and physics behind flat arguments, the keys of the
existing configs and grids (``data.init_args.train_size``, ``sigma``, ``accelerations``).

For another System, noise or mask, name ``SimulationDataModule`` with its ``source`` and
``physics`` blocks instead (docs/data.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from deepinv_lab.data.physics import (
    BirdcageCoils,
    CartesianMask,
    CartesianMRIPhysics,
    DenoisingPhysics,
    Gaussian,
    LinearPhysics,
)
from deepinv_lab.data.physics.noise import DEFAULT_SIGMA
from deepinv_lab.data.simulation_datamodule import SimulationDataModule
from deepinv_lab.data.sources import BuiltinBrain, BuiltinMicroCT, BuiltinPhotos
from deepinv_lab.errors import UserError
from deepinv_lab.systems.downsampling import Downsampling


class SimulatedBrainMRIDataModule(SimulationDataModule):
    """Multicoil Cartesian MRI of the built-in brain: ``BuiltinBrain`` measured by
    ``CartesianMRIPhysics`` with birdcage coils, a fastMRI column mask and complex Gaussian noise,
    ``y = M (F S x + n)``.

    Args:
        batch_size, num_workers, train_size, simulate_on: as in :class:`SimulationDataModule`
            (``train_size``: training slices, a nested subset).
        image_size, downsample, max_phase, seed: the source's (:class:`BuiltinBrain`).
        num_coils: birdcage coils.
        mask_type, center_fractions, accelerations: the fastMRI mask function.
        noise_sigma: the complex k-space noise level, relative to the template's maximum (1).
    """

    def __init__(
        self,
        batch_size: int = 1,
        num_workers: int = 0,
        train_size: int | None = None,
        image_size: tuple[int, int] = (224, 192),
        downsample: int = 1,
        num_coils: int = 8,
        mask_type: str = "random",
        center_fractions: Sequence[float] = (0.08,),
        accelerations: Sequence[int] = (4,),
        noise_sigma: float = 0.002,
        max_phase: float = math.pi / 2,
        seed: int = 0,
        simulate_on: str = "workers",
    ):
        if not noise_sigma >= 0:
            raise UserError(f"data.noise_sigma must be >= 0, got {noise_sigma}")
        physics = CartesianMRIPhysics(
            mask=CartesianMask(mask_type, accelerations, center_fractions),
            coils=BirdcageCoils(num_coils),
            noise=Gaussian(sigma=noise_sigma),
        )
        source = BuiltinBrain(image_size, downsample, max_phase, seed)
        super().__init__(source, physics, batch_size, num_workers, train_size, simulate_on)


class BuiltinDenoisingDataModule(SimulationDataModule):
    """Gaussian denoising of the built-in photographs: ``BuiltinPhotos`` measured by
    ``DenoisingPhysics(Gaussian(sigma or sigma_range))``.

    Args:
        batch_size, num_workers, simulate_on: as in :class:`SimulationDataModule`.
        train_size: a fixed pool of distinct training patches (scaling-law studies); None =
            fresh random patches every epoch.
        patches_per_image, val_patches_per_image, patch_size, grayscale, seed: the source's
            (:class:`BuiltinPhotos`).
        sigma: the noise level in image units (default ``25 / 255``); ``sigma_range``: a level
            drawn per item instead (blind denoisers).

    Batches: ``y``, ``target`` ``(B, C, P, P)``, ``max_value``, ``sigma`` ``(B,)`` and
    ``system``, a ``GaussianNoise`` with the per-sample levels.
    """

    def __init__(
        self,
        batch_size: int = 8,
        num_workers: int = 0,
        train_size: int | None = None,
        patches_per_image: int | None = None,
        val_patches_per_image: int | None = None,
        patch_size: int = 64,
        sigma: float | None = None,
        sigma_range: tuple[float, float] | None = None,
        grayscale: bool = True,
        seed: int = 0,
        simulate_on: str = "workers",
    ):
        if sigma is None and sigma_range is None:
            sigma = DEFAULT_SIGMA
        physics = DenoisingPhysics(Gaussian(sigma, sigma_range))
        source = BuiltinPhotos(
            patch_size, grayscale, patches_per_image, val_patches_per_image, seed
        )
        super().__init__(source, physics, batch_size, num_workers, train_size, simulate_on)


class BuiltinSuperResolutionDataModule(SimulationDataModule):
    """Super-resolution of the built-in photographs: ``BuiltinPhotos`` measured by
    ``LinearPhysics(Downsampling(scale, filter))``, noiseless (``y = D x``, circular borders).

    Args:
        batch_size, num_workers, train_size, patches_per_image, val_patches_per_image,
            grayscale, seed, simulate_on: as in :class:`BuiltinDenoisingDataModule`.
        patch_size: side of the high-resolution patches, a multiple of ``scale``.
        scale, filter: the :class:`~deepinv_lab.systems.downsampling.Downsampling`.

    Batches: ``y`` ``(B, C, P/scale, P/scale)``, ``target`` ``(B, C, P, P)``, ``max_value`` and
    ``system``, the ``Downsampling``.
    """

    def __init__(
        self,
        batch_size: int = 8,
        num_workers: int = 0,
        train_size: int | None = None,
        patches_per_image: int | None = None,
        val_patches_per_image: int | None = None,
        patch_size: int = 96,
        scale: int = 4,
        filter: str = "bicubic",
        grayscale: bool = True,
        seed: int = 0,
        simulate_on: str = "workers",
    ):
        physics = _downsampling_physics(patch_size, scale, filter)
        source = BuiltinPhotos(
            patch_size, grayscale, patches_per_image, val_patches_per_image, seed
        )
        super().__init__(source, physics, batch_size, num_workers, train_size, simulate_on)


class BuiltinMicroCTDataModule(SimulationDataModule):
    """x4 super-resolution of the built-in granular texture, the stand-in for rock micro-CT:
    ``BuiltinMicroCT`` measured by ``LinearPhysics(Downsampling(scale, filter))``.

    Args: those of :class:`BuiltinSuperResolutionDataModule` but ``grayscale`` (micro-CT is
    grayscale); validation ``patch_size`` at most 128.
    """

    def __init__(
        self,
        batch_size: int = 8,
        num_workers: int = 0,
        train_size: int | None = None,
        patches_per_image: int | None = None,
        val_patches_per_image: int | None = None,
        patch_size: int = 96,
        scale: int = 4,
        filter: str = "bicubic",
        seed: int = 0,
        simulate_on: str = "workers",
    ):
        physics = _downsampling_physics(patch_size, scale, filter)
        source = BuiltinMicroCT(patch_size, patches_per_image, val_patches_per_image, seed)
        super().__init__(source, physics, batch_size, num_workers, train_size, simulate_on)


def _downsampling_physics(patch_size: int, scale: int, filter: str) -> LinearPhysics:
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise UserError(f"data.scale must be an integer >= 1, got {scale!r}")
    if patch_size % scale:
        raise UserError(
            f"patch_size ({patch_size}) must be a multiple of scale ({scale}); e.g. "
            f"{patch_size - patch_size % scale} or {patch_size - patch_size % scale + scale}"
        )
    return LinearPhysics(Downsampling(scale, filter))
