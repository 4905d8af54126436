"""Per-item draws of MRI acquisition parameters, as config blocks: Cartesian sampling masks,
coil sensitivity maps, non-Cartesian trajectories, and coil maps estimated from the measured
calibration region (Cartesian) or k-space centre (non-Cartesian).

Each block draws from the item's generator, so an item's parameters depend only on the seed,
the epoch and its index (:mod:`deepinv_lab.data.samplers`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from deepinv_lab.errors import UserError
from deepinv_lab.systems.coil_compression import compress_coils
from deepinv_lab.systems.coils import birdcage_maps
from deepinv_lab.systems.espirit import espirit_maps
from deepinv_lab.systems.nufft import NUFFT
from deepinv_lab.systems.sampling import (
    PoissonDiscMaskFunc,
    VariableDensityMaskFunc,
    create_mask_for_mask_type,
    to_kspace_mask,
)
from deepinv_lab.systems.trajectories import radial_density, radial_trajectory

#: Mask types of :class:`CartesianMask`: fastMRI's column masks and the 2D ones.
COLUMN_MASKS = ("random", "equispaced", "equispaced_fraction")
MASKS_2D = ("poisson_disc", "variable_density")


def _seed(generator: torch.Generator) -> int:
    return int(torch.randint(0, 2**31 - 1, (), generator=generator))


class CartesianMask:
    """A Cartesian k-space sampling mask per item.

    Args:
        mask_type: fastMRI's column masks (``"random"``, ``"equispaced"``,
            ``"equispaced_fraction"``: fully sampled columns, 1D undersampling) or 2D masks of the
            ky-kx plane (``"poisson_disc"``, ``"variable_density"``; 2D undersampling as in 3D
            acquisitions and compressed-sensing studies).
        accelerations: candidate accelerations, one drawn per item.
        center_fractions: column masks: the fraction of fully sampled centre columns, one per
            acceleration.
        calib: 2D masks: the fully sampled calibration block ``(rows, cols)``.

    Draws ``mask`` (``(1, 1, W)`` columns or ``(1, H, W)``) and ``num_low_frequencies`` (the
    calibration block's width).
    """

    def __init__(
        self,
        mask_type: str = "random",
        accelerations: Sequence[float] = (4,),
        center_fractions: Sequence[float] = (0.08,),
        calib: tuple[int, int] = (24, 24),
    ):
        # a config's 4 arrives as 4.0: whole accelerations are column spacings (equispaced masks)
        accelerations = [
            int(a) if isinstance(a, float) and a.is_integer() else a for a in accelerations
        ]
        if mask_type in COLUMN_MASKS:
            self.function = create_mask_for_mask_type(mask_type, center_fractions, accelerations)
        elif mask_type == "poisson_disc":
            self.function = PoissonDiscMaskFunc(accelerations, calib)
        elif mask_type == "variable_density":
            self.function = VariableDensityMaskFunc(accelerations, calib)
        else:
            raise UserError(
                f"CartesianMask: mask_type must be one of {[*COLUMN_MASKS, *MASKS_2D]}, got "
                f"{mask_type!r}"
            )
        self.mask_type = mask_type
        self.calib = tuple(calib)

    def draw(self, shape: tuple[int, int], generator: torch.Generator) -> dict[str, torch.Tensor]:
        """``mask`` and ``num_low_frequencies`` for an ``(H, W)`` image."""
        height, width = shape
        mask, num_low_frequencies = self.function((1, height, width, 2), seed=_seed(generator))
        return {
            "mask": to_kspace_mask(mask).float(),
            "num_low_frequencies": torch.tensor(int(num_low_frequencies)),
        }

    def __repr__(self) -> str:
        return f"CartesianMask({self.mask_type!r}, {self.function!r})"


class BirdcageCoils:
    """Smooth birdcage coil sensitivities (:func:`~deepinv_lab.systems.coils.birdcage_maps`,
    unit root-sum-of-squares), rotated by a random angle per item.

    Args:
        num_coils: the number of receive coils.
        radius: the coils' distance from the centre, in half fields of view.
        random_rotation: rotate the coil array by a uniform random angle per item.

    Draws ``coil_maps`` ``(coils, H, W)`` complex.
    """

    def __init__(self, num_coils: int = 8, radius: float = 1.5, random_rotation: bool = True):
        if isinstance(num_coils, bool) or not isinstance(num_coils, int) or num_coils < 1:
            raise UserError(f"BirdcageCoils: num_coils must be an integer >= 1, got {num_coils!r}")
        if not radius > 1:
            raise UserError(f"BirdcageCoils: radius must be > 1 (outside the image), got {radius}")
        self.num_coils = num_coils
        self.radius = float(radius)
        self.random_rotation = random_rotation

    def draw(self, shape: tuple[int, int], generator: torch.Generator) -> dict[str, torch.Tensor]:
        rotation = float(2 * math.pi * torch.rand((), generator=generator))
        if not self.random_rotation:
            rotation = 0.0
        maps = birdcage_maps(self.num_coils, tuple(shape), self.radius, rotation)
        return {"coil_maps": maps}

    def __repr__(self) -> str:
        return f"BirdcageCoils(num_coils={self.num_coils})"


class RadialTrajectory:
    """Golden-angle (or uniform) radial spokes through the k-space centre
    (:func:`~deepinv_lab.systems.trajectories.radial_trajectory`), with the analytic ramp density
    compensation (:func:`~deepinv_lab.systems.trajectories.radial_density`).

    Args:
        num_spokes: spokes per item.
        num_readout: samples per spoke; ``None``: twice the image's larger side (readout
            oversampling 2, the usual acquisition).
        golden_angle: golden-angle increments (else uniform angles over 180 degrees).
        random_start: start each item's golden-angle sequence at a random spoke, so every item
            has its own trajectory (uniform angles are rotated instead).

    Draws ``trajectory`` ``(2, K)`` and ``weights`` ``(K,)``, ``K = num_spokes * num_readout``.
    """

    def __init__(
        self,
        num_spokes: int = 64,
        num_readout: int | None = None,
        golden_angle: bool = True,
        random_start: bool = True,
    ):
        if isinstance(num_spokes, bool) or not isinstance(num_spokes, int) or num_spokes < 1:
            raise UserError(
                f"RadialTrajectory: num_spokes must be an integer >= 1, got {num_spokes!r}"
            )
        if num_readout is not None and (not isinstance(num_readout, int) or num_readout < 2):
            raise UserError(
                "RadialTrajectory: num_readout must be an integer >= 2 or null, got "
                f"{num_readout!r}"
            )
        self.num_spokes = num_spokes
        self.num_readout = num_readout
        self.golden_angle = golden_angle
        self.random_start = random_start

    def readout(self, shape: tuple[int, int]) -> int:
        return self.num_readout if self.num_readout is not None else 2 * max(shape)

    def draw(self, shape: tuple[int, int], generator: torch.Generator) -> dict[str, torch.Tensor]:
        first = int(torch.randint(0, 2**20, (), generator=generator)) if self.random_start else 0
        readout = self.readout(shape)
        trajectory = radial_trajectory(self.num_spokes, readout, self.golden_angle, first)
        if self.random_start and not self.golden_angle:  # rotate the uniform fan
            angle = math.pi * first / 2**20
            rotation = torch.tensor(
                [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]
            )
            trajectory = rotation @ trajectory
        weights = radial_density(self.num_spokes, readout, shape)
        return {"trajectory": trajectory, "weights": weights}

    def __repr__(self) -> str:
        return f"RadialTrajectory(num_spokes={self.num_spokes}, num_readout={self.num_readout})"


def calibration_columns(width: int, num_low_frequencies: int, calib_width: int) -> int:
    """The widest central block of at most ``calib_width`` columns that lies inside the acquired
    ACS block of ``num_low_frequencies`` columns (fastMRI's: from ``(width - n + 1) // 2``), when
    the block is centred as ESPIRiT takes it (from ``width // 2 - c // 2``); 0 if none."""
    acs_start = (width - num_low_frequencies + 1) // 2
    for columns in range(min(calib_width, num_low_frequencies), 0, -1):
        start = width // 2 - columns // 2
        if start >= acs_start and start + columns <= acs_start + num_low_frequencies:
            return columns
    return 0


class EspiritEstimate:
    """Coil maps estimated by ESPIRiT from the measured calibration block of each item's k-space
    (:func:`~deepinv_lab.systems.espirit.espirit_maps`, SigPy's ``EspiritCalib`` in torch): what a
    reconstruction of real data knows, instead of the true maps.

    The block is ``calib_width`` rows by ``calib_width`` columns, narrowed to the acquired ACS
    columns when the data say how many there are (``num_low_frequencies``: fastMRI's column
    masks, whose readout rows are all acquired), so that no unacquired (zero) column enters the
    calibration.

    Args:
        calib_width: side of the central calibration block used; at most the rows of the mask's
            fully sampled block (:class:`CartesianMask`'s ``calib``; column masks acquire every
            row).
        threshold, crop, kernel_width, max_iter: ESPIRiT's parameters (SigPy's defaults but
            ``max_iter``).
    """

    def __init__(
        self,
        calib_width: int = 24,
        threshold: float = 0.02,
        crop: float = 0.95,
        kernel_width: int = 6,
        max_iter: int = 30,
    ):
        if not 0 < kernel_width < calib_width:
            raise UserError(
                f"EspiritEstimate: expected 0 < kernel_width < calib_width, got kernel_width="
                f"{kernel_width}, calib_width={calib_width}"
            )
        self.calib_width = calib_width
        self.threshold = threshold
        self.crop = crop
        self.kernel_width = kernel_width
        self.max_iter = max_iter

    def __call__(
        self, kspace: torch.Tensor, num_low_frequencies: torch.Tensor | int | None = None
    ) -> torch.Tensor:
        """Maps ``(B, coils, H, W)`` from measured k-space ``(B, coils, H, W)`` and, optionally,
        each item's ACS width ``(B,)`` (samples of equal width are estimated together)."""
        if num_low_frequencies is None:
            return self._estimate(kspace, self.calib_width)
        width = kspace.shape[-1]
        widths = torch.as_tensor(num_low_frequencies).reshape(-1).expand(kspace.shape[0])
        columns = [calibration_columns(width, int(n), self.calib_width) for n in widths.tolist()]
        maps = torch.empty_like(kspace)
        for block in sorted(set(columns)):
            if block <= self.kernel_width:
                raise UserError(
                    f"EspiritEstimate: an ACS region too narrow for the kernel: the acquired "
                    f"calibration block is {block} central columns (ACS widths "
                    f"{widths.tolist()}), not wider than kernel_width {self.kernel_width}; lower "
                    "kernel_width or acquire more ACS columns"
                )
            chosen = torch.tensor([c == block for c in columns], device=kspace.device)
            maps[chosen] = self._estimate(kspace[chosen], (self.calib_width, block))
        return maps

    def _estimate(self, kspace: torch.Tensor, calib: int | tuple[int, int]) -> torch.Tensor:
        return espirit_maps(
            kspace, calib, self.threshold, self.crop, self.kernel_width, self.max_iter
        )

    def __repr__(self) -> str:
        return f"EspiritEstimate(calib_width={self.calib_width})"


class CoilCompression:
    """Compress each item's measured multicoil k-space to ``num_coils`` virtual coils (SVD/PCA
    of its coil covariance, :func:`~deepinv_lab.systems.coil_compression.compress_coils`), a data
    step before the coil maps are estimated: fewer coils, faster Recons, some signal lost.

    Args:
        num_coils: the virtual coils kept (at most the data's coils).
    """

    def __init__(self, num_coils: int = 8):
        if isinstance(num_coils, bool) or not isinstance(num_coils, int) or num_coils < 1:
            raise UserError(
                f"CoilCompression: num_coils must be an integer >= 1, got {num_coils!r}"
            )
        self.num_coils = num_coils

    def __call__(self, kspace: torch.Tensor) -> torch.Tensor:
        """``(B, coils, H, W)`` -> ``(B, num_coils, H, W)``."""
        return compress_coils(kspace, self.num_coils)

    def __repr__(self) -> str:
        return f"CoilCompression(num_coils={self.num_coils})"


class LowResolutionMaps:
    """Coil maps estimated from the non-Cartesian samples near the k-space centre: the gridded
    low-resolution coil images divided by their root-sum-of-squares, the usual estimate for radial
    and spiral data whose centre is densely sampled (e.g. mri-nufft's ``low_frequency``).

    The density-compensated samples are weighted by a Hann window of ``calib_width`` grid samples
    across the centre, gridded by the adjoint NUFFT to coil images ``l_c``, and
    ``s_c = l_c / sqrt(sum_c |l_c|^2)``, set to zero where the root-sum-of-squares is below
    ``threshold`` times its maximum (outside the object).

    Args:
        calib_width: the window's width in Cartesian grid samples (k-space of the image size).
        threshold: the relative root-sum-of-squares below which maps are zero.
    """

    def __init__(self, calib_width: int = 24, threshold: float = 0.05):
        if isinstance(calib_width, bool) or not isinstance(calib_width, int) or calib_width < 2:
            raise UserError(
                f"LowResolutionMaps: calib_width must be an integer >= 2, got {calib_width!r}"
            )
        if not 0 <= threshold < 1:
            raise UserError(f"LowResolutionMaps: threshold must be in [0, 1), got {threshold}")
        self.calib_width = calib_width
        self.threshold = float(threshold)

    def __call__(
        self, compensated: torch.Tensor, trajectory: torch.Tensor, image_size: tuple[int, int]
    ) -> torch.Tensor:
        """Maps ``(B, coils, H, W)`` from density-compensated samples ``(B, coils, K)`` at the
        trajectory ``(B, 2, K)`` or ``(2, K)`` (radians)."""
        height, width = image_size
        scale = torch.tensor([height, width], dtype=trajectory.dtype, device=trajectory.device)
        radius = ((trajectory * scale[:, None] / (2 * math.pi)) ** 2).sum(-2).sqrt()
        half = self.calib_width / 2
        window = torch.cos(math.pi / 2 * radius / half).clamp(min=0) ** 2
        window = torch.where(radius < half, window, torch.zeros_like(window))
        window = window if window.ndim == 2 else window[None]
        samples = compensated * window[:, None].to(compensated.dtype)
        images = NUFFT(trajectory, image_size, toeplitz=False).adjoint(samples)
        norm = images.abs().pow(2).sum(1, keepdim=True).sqrt()
        peak = norm.amax(dim=(-2, -1), keepdim=True)
        inside = norm > self.threshold * peak
        maps = images / torch.where(inside, norm, torch.ones_like(norm))
        return torch.where(inside, maps, torch.zeros_like(maps))

    def __repr__(self) -> str:
        return f"LowResolutionMaps(calib_width={self.calib_width})"
