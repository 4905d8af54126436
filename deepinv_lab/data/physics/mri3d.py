"""3D Cartesian MRI physics: a complex volume ``(1, X, Y, Z)`` measured through a cylindrical coil
array with a ky-kz mask (:class:`~deepinv_lab.systems.mri3d.MultiCoilMRI3D`).

The axes are the volume's: ``X`` is the readout (fully sampled), the 2D mask lies on the
``(Y, Z)`` phase-encode plane and is drawn by the 2D mask functions
(:class:`~deepinv_lab.data.physics.draws.CartesianMask` with ``"poisson_disc"`` or
``"variable_density"``) for the shape ``(Y, Z)``, calibration block included.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from deepinv_lab.data.physics.base import Params, Physics
from deepinv_lab.data.physics.draws import CartesianMask
from deepinv_lab.data.physics.noise import NoiseModel
from deepinv_lab.errors import UserError
from deepinv_lab.systems.base import LinearSystem
from deepinv_lab.systems.coils import birdcage_maps_3d
from deepinv_lab.systems.mri3d import MultiCoilMRI3D


class BirdcageCoils3D:
    """Smooth sensitivities of a cylindrical coil array around the readout axis
    (:func:`~deepinv_lab.systems.coils.birdcage_maps_3d`, unit root-sum-of-squares), rotated by
    a random angle per item.

    Args:
        num_coils: the number of receive coils (a multiple of ``rings``).
        radius: the coils' distance from the axis, in half fields of view.
        rings: the number of coil rings along the readout axis.
        random_rotation: rotate the coil array by a uniform random angle per item.

    Draws ``coil_maps`` ``(coils, X, Y, Z)`` complex.
    """

    def __init__(
        self, num_coils: int = 8, radius: float = 1.5, rings: int = 1, random_rotation: bool = True
    ):
        if isinstance(num_coils, bool) or not isinstance(num_coils, int) or num_coils < 1:
            raise UserError(
                f"BirdcageCoils3D: num_coils must be an integer >= 1, got {num_coils!r}"
            )
        if isinstance(rings, bool) or not isinstance(rings, int) or rings < 1 or num_coils % rings:
            raise UserError(
                f"BirdcageCoils3D: rings must be an integer >= 1 dividing num_coils={num_coils}, "
                f"got {rings!r}"
            )
        if not radius > 1:
            raise UserError(
                f"BirdcageCoils3D: radius must be > 1 (outside the volume), got {radius}"
            )
        self.num_coils = num_coils
        self.radius = float(radius)
        self.rings = rings
        self.random_rotation = random_rotation

    def draw(
        self, shape: tuple[int, int, int], generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        """``coil_maps`` ``(coils, X, Y, Z)`` for a volume of ``shape = (X, Y, Z)``."""
        rotation = float(2 * math.pi * torch.rand((), generator=generator))
        if not self.random_rotation:
            rotation = 0.0
        maps = birdcage_maps_3d(self.num_coils, tuple(shape), self.radius, self.rings, rotation)
        return {"coil_maps": maps}

    def __repr__(self) -> str:
        return f"BirdcageCoils3D(num_coils={self.num_coils}, rings={self.rings})"


class Cartesian3DMRIPhysics(Physics):
    """3D multicoil Cartesian MRI, ``y = M (F S x + n)``
    (:class:`~deepinv_lab.systems.mri3d.MultiCoilMRI3D`), for complex volumes ``(1, X, Y, Z)``.

    Args:
        mask: the ky-kz mask per item, drawn for the ``(Y, Z)`` plane (default: Poisson disc,
            acceleration 4, a 16 x 16 calibration block); a column mask samples whole ``ky``
            lines (``(1, Z)`` pattern broadcast over ``Y``).
        coils: the coil maps per item (default: 8 coils of :class:`BirdcageCoils3D`).
        noise: the k-space noise (complex Gaussian), added to the acquired samples only.

    Batch keys: ``mask`` ``(B, 1, 1, Y, Z)`` (or ``(B, 1, 1, 1, Z)``), ``num_low_frequencies``
    (the calibration block's width along ``Z``), ``coil_maps`` ``(B, coils, X, Y, Z)``, the
    noise level.
    """

    complex_images = True

    def __init__(
        self,
        mask: CartesianMask | None = None,
        coils: BirdcageCoils3D | None = None,
        noise: NoiseModel | None = None,
    ):
        super().__init__(noise)
        self.mask = mask if mask is not None else CartesianMask("poisson_disc", [4], calib=(16, 16))
        self.coils = coils if coils is not None else BirdcageCoils3D()

    def draw_operator(self, image_shape: Sequence[int], generator: torch.Generator) -> Params:
        if len(image_shape) != 4 or int(image_shape[0]) != 1:
            raise UserError(
                "Cartesian3DMRIPhysics measures complex volumes of shape (1, X, Y, Z), got "
                f"ground truth of shape {tuple(image_shape)}"
            )
        readout, *plane = (int(s) for s in image_shape[1:])
        params = self.coils.draw((readout, *plane), generator)
        drawn = self.mask.draw(tuple(plane), generator)
        # (1, Y or 1, Z) -> (1, 1, Y or 1, Z): constant along the readout
        params["mask"] = drawn["mask"].unsqueeze(1)
        params["num_low_frequencies"] = drawn["num_low_frequencies"]
        return params

    def operator(self, params: Params) -> MultiCoilMRI3D:
        return MultiCoilMRI3D(params["coil_maps"], params["mask"], params["num_low_frequencies"])

    def restrict(self, y: torch.Tensor, params: Params, acquisition: LinearSystem) -> torch.Tensor:
        assert isinstance(acquisition, MultiCoilMRI3D)
        return acquisition.sampling(y)  # noise only where k-space is acquired
