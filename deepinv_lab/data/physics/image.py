"""Image-domain physics: denoising, inpainting, compressed sensing, and any linear System given
in the config (downsampling, a blur of your own, compositions)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from deepinv_lab.data.physics.base import Params, Physics
from deepinv_lab.data.physics.noise import DEFAULT_SIGMA, Gaussian, NoiseModel
from deepinv_lab.errors import UserError
from deepinv_lab.systems.base import LinearSystem, System
from deepinv_lab.systems.cs import CompressedSensing
from deepinv_lab.systems.masking import Inpainting, random_pixel_mask


class DenoisingPhysics(Physics):
    """Denoising, ``y = x + n``. The batch's System is the noise itself with the items' levels
    (``GaussianNoise(sigma)`` or ``PoissonNoise(gain)``), so blind denoisers can read them.

    Args:
        noise: the noise model (default ``Gaussian(sigma=25/255)``); ``Poisson(gain=...)`` is
            photon-limited denoising.
    """

    def __init__(self, noise: NoiseModel | None = None):
        super().__init__(noise if noise is not None else Gaussian(sigma=DEFAULT_SIGMA))

    def draw_operator(self, image_shape: Sequence[int], generator: torch.Generator) -> Params:
        return {}

    def operator(self, params: Params) -> LinearSystem:
        from deepinv_lab.systems.base import Identity

        return Identity()

    def system(self, params: Params) -> System:
        return self.noise.system(params)


class InpaintingPhysics(Physics):
    """Inpainting of randomly missing pixels, ``y = M (x + n)``
    (:class:`~deepinv_lab.systems.masking.Inpainting`), a fresh mask per item.

    Args:
        missing: the fraction of pixels missing, in ``[0, 1)``; exactly ``round(missing H W)``
            pixels per item, the same in every channel.
        noise: noise on the observed pixels (``None``: noiseless).

    Batch keys: ``mask`` ``(B, 1, H, W)``, the noise level.
    """

    def __init__(self, missing: float = 0.7, noise: NoiseModel | None = None):
        super().__init__(noise)
        if not 0 <= missing < 1:
            raise UserError(f"InpaintingPhysics: missing must be in [0, 1), got {missing}")
        self.missing = float(missing)

    def draw_operator(self, image_shape: Sequence[int], generator: torch.Generator) -> Params:
        height, width = image_shape[-2:]
        mask = random_pixel_mask((1, 1, height, width), 1 - self.missing, generator)[0]
        return {"mask": mask}

    def operator(self, params: Params) -> Inpainting:
        return Inpainting(params["mask"])

    def restrict(self, y: torch.Tensor, params: Params, acquisition: LinearSystem) -> torch.Tensor:
        return acquisition(y)  # missing pixels stay zero


class CompressedSensingPhysics(Physics):
    """Compressed sensing with a random Gaussian matrix, ``y = Phi vec(x) + n``
    (:class:`~deepinv_lab.systems.cs.CompressedSensing`): one matrix for the whole dataset,
    drawn from ``matrix_seed``, as in the compressed-sensing literature.

    Args:
        ratio: measurements per pixel, ``m = round(ratio C H W)``, in ``(0, 1]``.
        matrix_seed: the matrix's seed.
        noise: the measurement noise.

    The matrix is ``m x C H W``: keep images small (e.g. 32 x 32 patches).
    """

    def __init__(self, ratio: float = 0.25, matrix_seed: int = 0, noise: NoiseModel | None = None):
        super().__init__(noise)
        if not 0 < ratio <= 1:
            raise UserError(f"CompressedSensingPhysics: ratio must be in (0, 1], got {ratio}")
        self.ratio = float(ratio)
        self.matrix_seed = int(matrix_seed)
        self._matrix: dict[tuple, CompressedSensing] = {}

    def draw_operator(self, image_shape: Sequence[int], generator: torch.Generator) -> Params:
        return {"image_shape": torch.tensor(tuple(image_shape))}

    def operator(self, params: Params) -> CompressedSensing:
        shape = tuple(int(n) for n in params["image_shape"].reshape(-1, 3)[0])
        device = params["image_shape"].device
        key = (shape, str(device))
        if key not in self._matrix:  # one draw of the matrix per process and device
            size = shape[0] * shape[1] * shape[2]
            m = max(1, round(self.ratio * size))
            self._matrix[key] = CompressedSensing(m, shape, self.matrix_seed).to(device)
        return self._matrix[key]

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_matrix": {}}  # workers and checkpoints redraw it


class LinearPhysics(Physics):
    """Any linear System given in the config, the same for every item, with noise:
    ``y = A x + n``. ``Downsampling`` (super-resolution), a blur of your own (``examples/``),
    ``Composition``/``Sum``/``Scaled`` of them.

    Args:
        system: the System, a ``class_path`` block whose ``init_args`` are plain values.
        noise: the measurement noise (``None``: noiseless).
        complex_images: the System acts on complex images (e.g. ``FFT2``); the ground truth is
            then the source's complex image.
    """

    def __init__(
        self,
        system: LinearSystem,
        noise: NoiseModel | None = None,
        complex_images: bool = False,
    ):
        super().__init__(noise)
        if not isinstance(system, LinearSystem):
            raise UserError(
                f"LinearPhysics: system must be a LinearSystem (forward and adjoint), got "
                f"{type(system).__name__}"
            )
        self.linear_system = system
        self.complex_images = bool(complex_images)

    def draw_operator(self, image_shape: Sequence[int], generator: torch.Generator) -> Params:
        return {}

    def operator(self, params: Params) -> LinearSystem:
        return self.linear_system

    def describe(self) -> str:
        return f"LinearPhysics({type(self.linear_system).__name__})"
