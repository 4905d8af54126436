"""Cartesian k-space sampling masks: fastMRI's column masks and 2D masks, one call convention.

* :mod:`~deepinv_lab.systems.sampling.base` -- the contract: :class:`SampledMask`, the
  :class:`MaskFunction` call signature, per-call seeding;
* :mod:`~deepinv_lab.systems.sampling.columns` -- fastMRI's column masks, bit for bit
  (:class:`RandomMaskFunc`, :class:`EquispacedMaskFunc`, :class:`EquispacedMaskFractionFunc`,
  :func:`create_mask_for_mask_type`);
* :mod:`~deepinv_lab.systems.sampling.masks2d` -- the calibration block of 2D masks and
  :class:`MaskFunc2D`; :mod:`~deepinv_lab.systems.sampling.poisson` (:func:`poisson_disc_mask`,
  :class:`PoissonDiscMaskFunc`) and :mod:`~deepinv_lab.systems.sampling.variable_density`
  (:func:`variable_density_mask`, :class:`VariableDensityMaskFunc`);
* :mod:`~deepinv_lab.systems.sampling.layout` -- fastMRI layout to the project's
  (:func:`to_column_mask`, :func:`to_kspace_mask`, :func:`to_kykz_mask`, :func:`batch_masks`).

Volumes: a 2D mask function called with a volume's k-space shape ``(coils, X, Y, Z, 2)`` draws
the ky-kz plane ``(Y, Z)`` with its calibration block; :func:`to_kykz_mask` gives ``(1, 1, Y, Z)``.

Every mask function is called as fastMRI's, ``mask_func(shape, offset=None, seed=None)`` with a
k-space shape ``(..., H, W, 2)``, and returns a :class:`SampledMask` ``(mask,
num_low_frequencies)``: the mask in fastMRI's layout and the number of columns of its fully
sampled calibration block::

    mask, num_low_frequencies = RandomMaskFunc([0.08], [4], seed=0)((coils, height, width, 2))
    mask, num_low_frequencies = PoissonDiscMaskFunc([4], calib=(24, 24))((coils, height, width, 2))

The functions :func:`poisson_disc_mask` and :func:`variable_density_mask` are the samplers behind
the 2D mask functions: they take ``(H, W)`` and ``calib`` and return the ``(H, W)`` mask alone.
"""

from deepinv_lab.systems.sampling.base import MaskFunction, SampledMask, Seed
from deepinv_lab.systems.sampling.columns import (
    MASK_FUNCS,
    EquispacedMaskFractionFunc,
    EquispacedMaskFunc,
    MaskFunc,
    RandomMaskFunc,
    create_mask_for_mask_type,
)
from deepinv_lab.systems.sampling.layout import (
    batch_masks,
    to_column_mask,
    to_kspace_mask,
    to_kykz_mask,
)
from deepinv_lab.systems.sampling.masks2d import MaskFunc2D, calibration_slices
from deepinv_lab.systems.sampling.poisson import PoissonDiscMaskFunc, poisson_disc_mask
from deepinv_lab.systems.sampling.variable_density import (
    VariableDensityMaskFunc,
    variable_density_mask,
)

__all__ = [
    "MASK_FUNCS",
    "EquispacedMaskFractionFunc",
    "EquispacedMaskFunc",
    "MaskFunc",
    "MaskFunc2D",
    "MaskFunction",
    "PoissonDiscMaskFunc",
    "RandomMaskFunc",
    "SampledMask",
    "Seed",
    "VariableDensityMaskFunc",
    "batch_masks",
    "calibration_slices",
    "create_mask_for_mask_type",
    "poisson_disc_mask",
    "to_column_mask",
    "to_kspace_mask",
    "to_kykz_mask",
    "variable_density_mask",
]
