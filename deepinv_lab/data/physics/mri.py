"""MRI physics: multicoil and single-coil Cartesian sampling, and non-Cartesian (NUFFT) sampling.

The ground truth is a complex image ``(1, H, W)`` (a magnitude with a smooth phase), measured
through drawn coil maps, or real coil images ``(coils, H, W)``
(:class:`~deepinv_lab.data.sources.FastMRICoilImages`), acquired coil by coil: a ground truth of
more than one channel is coil images. Measurements are k-space with noise on the acquired samples
only.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from deepinv_lab.data.physics.base import Params, Physics
from deepinv_lab.data.physics.draws import (
    BirdcageCoils,
    CartesianMask,
    EspiritEstimate,
    LowResolutionMaps,
    RadialTrajectory,
)
from deepinv_lab.data.physics.noise import NoiseModel
from deepinv_lab.errors import UserError
from deepinv_lab.systems.base import LinearSystem
from deepinv_lab.systems.mri import (
    MaskedComposition,
    MultiCoilFourier,
    MultiCoilMRI,
    SingleCoilMRI,
)
from deepinv_lab.systems.nufft import BACKENDS, NUFFT, MultiCoilNUFFT


def coil_images(image_shape: Sequence[int]) -> bool:
    """Whether a ground truth of shape ``(C, H, W)`` is coil images (``C > 1``), acquired coil by
    coil, rather than one image measured through drawn coil maps."""
    return int(image_shape[0]) > 1


class CartesianMRIPhysics(Physics):
    """Multicoil Cartesian MRI, ``y = M (F S x + n)``
    (:class:`~deepinv_lab.systems.mri.MultiCoilMRI`).

    Args:
        mask: the sampling mask per item (:class:`~deepinv_lab.data.physics.draws.CartesianMask`:
            fastMRI columns, Poisson disc, variable density).
        coils: the true coil maps per item (default: 8 birdcage coils, randomly rotated);
            unused when the source gives coil images.
        noise: the k-space noise (complex Gaussian, relative to images of maximum about 1).
        estimate_maps: coil maps the reconstruction is given instead of the true ones, estimated
            from each item's measured calibration block (``EspiritEstimate``); ``None``: the
            true maps.

    Batch keys: ``mask``, ``num_low_frequencies``, ``coil_maps`` (the estimated ones with
    ``estimate_maps``; the true ones then are ``true_coil_maps``), the noise level.

    Coil images (:func:`coil_images`, e.g. fastMRI's): ``y = M (F x_c + n)`` coil by coil. The
    System is ``MultiCoilMRI`` with the ``estimate_maps`` maps, or without them
    :class:`~deepinv_lab.systems.mri.MultiCoilFourier` (for Recons that need no maps: VarNet,
    ``ZeroFilled``), as for fastMRI's own files.
    """

    complex_images = True

    def __init__(
        self,
        mask: CartesianMask | None = None,
        coils: BirdcageCoils | None = None,
        noise: NoiseModel | None = None,
        estimate_maps: EspiritEstimate | None = None,
    ):
        super().__init__(noise)
        self.mask = mask if mask is not None else CartesianMask()
        self.coils = coils if coils is not None else BirdcageCoils()
        self.estimate_maps = estimate_maps

    def draw_operator(self, image_shape: Sequence[int], generator: torch.Generator) -> Params:
        shape = tuple(image_shape[-2:])
        params = {} if coil_images(image_shape) else self.coils.draw(shape, generator)
        params.update(self.mask.draw(shape, generator))
        if self.estimate_maps is not None and "coil_maps" in params:
            params["true_coil_maps"] = params.pop("coil_maps")
        return params

    def _operator(self, maps: torch.Tensor | None, params: Params) -> MaskedComposition:
        if maps is None:  # coil images, and no maps estimated
            return MultiCoilFourier(params["mask"], params["num_low_frequencies"])
        return MultiCoilMRI(maps, params["mask"], params["num_low_frequencies"])

    def operator(self, params: Params) -> MaskedComposition:
        # the parameters of coil images hold no maps before estimation: acquired coil by coil
        maps = params.get("true_coil_maps", params.get("coil_maps"))
        return self._operator(maps, params)

    def system(self, params: Params) -> MaskedComposition:
        return self._operator(params.get("coil_maps"), params)

    def restrict(self, y: torch.Tensor, params: Params, acquisition: LinearSystem) -> torch.Tensor:
        return acquisition.sampling(y)  # noise only where k-space is acquired

    def estimate(self, y: torch.Tensor, params: Params) -> Params:
        if self.estimate_maps is None:
            return {}
        widths = params["num_low_frequencies"]
        return {"coil_maps": self.estimate_maps(y, widths).to(y.device)}


class SingleCoilMRIPhysics(Physics):
    """Single-coil Cartesian MRI, ``y = M (F x + n)``
    (:class:`~deepinv_lab.systems.mri.SingleCoilMRI`): the setting of fastMRI's single-coil knee
    track, simulated.

    Args:
        mask: the sampling mask per item (:class:`~deepinv_lab.data.physics.draws.CartesianMask`).
        noise: the k-space noise.

    Batch keys: ``mask``, ``num_low_frequencies``, the noise level.
    """

    complex_images = True

    def __init__(self, mask: CartesianMask | None = None, noise: NoiseModel | None = None):
        super().__init__(noise)
        self.mask = mask if mask is not None else CartesianMask()

    def draw_operator(self, image_shape: Sequence[int], generator: torch.Generator) -> Params:
        return self.mask.draw(tuple(image_shape[-2:]), generator)

    def operator(self, params: Params) -> SingleCoilMRI:
        mask = params["mask"]
        return SingleCoilMRI(mask, params["num_low_frequencies"])

    def restrict(self, y: torch.Tensor, params: Params, acquisition: LinearSystem) -> torch.Tensor:
        assert isinstance(acquisition, MaskedComposition)
        return acquisition.sampling(y)


class NonCartesianMRIPhysics(Physics):
    """Multicoil non-Cartesian MRI, ``y = F_traj S x + n``
    (:class:`~deepinv_lab.systems.nufft.MultiCoilNUFFT`): a NUFFT along a trajectory drawn per
    item, with density compensation in the adjoint and the Toeplitz normal operator.

    Args:
        trajectory: the trajectory per item (default: 64 golden-angle radial spokes with a random
            start).
        coils: the coil maps per item (default: 8 birdcage coils); unused when the source gives
            coil images.
        noise: the k-space noise.
        estimate_maps: coil maps the reconstruction is given instead of the true ones, estimated
            from each item's measured samples near the k-space centre (``LowResolutionMaps``);
            needed for coil images, whose maps nobody knows. ``None``: the true maps.
        density_compensation: weight the adjoint by the trajectory's density compensation
            (gridding); without it ``A^H`` is the plain adjoint.
        toeplitz: the Toeplitz normal operator (one padded FFT pair per ``A^H A``).
        backend, tolerance: the NUFFT's (:class:`~deepinv_lab.systems.nufft.NUFFT`).

    Batch keys: ``trajectory`` ``(B, 2, K)``, ``weights`` ``(B, K)``, ``coil_maps`` (the
    estimated ones with ``estimate_maps``; the true ones then are ``true_coil_maps``), the noise
    level. Coil images (:func:`coil_images`) are acquired coil by coil, ``y_c = F_traj x_c + n``.
    """

    complex_images = True

    def __init__(
        self,
        trajectory: RadialTrajectory | None = None,
        coils: BirdcageCoils | None = None,
        noise: NoiseModel | None = None,
        estimate_maps: LowResolutionMaps | None = None,
        density_compensation: bool = True,
        toeplitz: bool = True,
        backend: str = "auto",
        tolerance: float = 1e-6,
    ):
        super().__init__(noise)
        if backend not in BACKENDS:
            raise UserError(
                f"NonCartesianMRIPhysics: backend must be one of {list(BACKENDS)}, got {backend!r}"
            )
        self.trajectory = trajectory if trajectory is not None else RadialTrajectory()
        self.coils = coils if coils is not None else BirdcageCoils()
        self.estimate_maps = estimate_maps
        self.density_compensation = density_compensation
        self.toeplitz = toeplitz
        self.backend = backend
        self.tolerance = tolerance

    def draw_operator(self, image_shape: Sequence[int], generator: torch.Generator) -> Params:
        shape = tuple(image_shape[-2:])
        if coil_images(image_shape):
            if self.estimate_maps is None:
                raise UserError(
                    "NonCartesianMRIPhysics: the source gives coil images, whose coil maps are "
                    "unknown: set estimate_maps (e.g. LowResolutionMaps) so that the Recon gets "
                    "maps estimated from the measurements"
                )
            params = {"image_size": torch.tensor(shape)}
        else:
            params = self.coils.draw(shape, generator)
        params.update(self.trajectory.draw(shape, generator))
        if self.estimate_maps is not None and "coil_maps" in params:
            params["true_coil_maps"] = params.pop("coil_maps")
        return params

    def _nufft(self, params: Params, maps: torch.Tensor, weighted: bool) -> MultiCoilNUFFT:
        return MultiCoilNUFFT(
            params["trajectory"],
            maps,
            params["weights"] if weighted else None,
            toeplitz=self.toeplitz,
            backend=self.backend,
            tolerance=self.tolerance,
        )

    def operator(self, params: Params) -> MultiCoilNUFFT:
        return self._nufft(
            params,
            params.get("true_coil_maps", params.get("coil_maps")),
            self.density_compensation,
        )

    def acquisition(self, params: Params) -> LinearSystem:
        maps = params.get("true_coil_maps", params.get("coil_maps"))
        if maps is None:  # coil images: each is sampled along the trajectory
            return NUFFT(params["trajectory"], self._image_size(params), None, False,
                         self.backend, self.tolerance)  # fmt: skip
        return self._nufft(params, maps, False)

    def system(self, params: Params) -> MultiCoilNUFFT:
        return self._nufft(params, params["coil_maps"], self.density_compensation)

    def restrict(self, y: torch.Tensor, params: Params, acquisition: LinearSystem) -> torch.Tensor:
        # the operator with density compensation weighs the acquired samples by sqrt(w)
        if not self.density_compensation:
            return y
        return y * params["weights"].sqrt().unsqueeze(1).to(y.dtype)

    def estimate(self, y: torch.Tensor, params: Params) -> Params:
        if self.estimate_maps is None:
            return {}
        # density-compensated samples w * y: the restricted ones carry sqrt(w) already
        weights = params["weights"].to(y.device).unsqueeze(1)
        compensated = y * (weights.sqrt() if self.density_compensation else weights).to(y.dtype)
        trajectory = params["trajectory"].to(y.device)
        maps = self.estimate_maps(compensated, trajectory, self._image_size(params))
        return {"coil_maps": maps}

    @staticmethod
    def _image_size(params: Params) -> tuple[int, int]:
        """``(H, W)``: the coil images' (a parameter) or the maps'."""
        if "image_size" in params:
            height, width = params["image_size"].reshape(-1, 2)[0].tolist()
            return (int(height), int(width))
        return tuple(params.get("true_coil_maps", params.get("coil_maps")).shape[-2:])
