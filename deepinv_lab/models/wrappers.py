"""Wrappers that change how a model is applied: to complex images, with normalisation, or averaged
over flips and rotations (self-ensemble).

All three work on images ``(B, C, H, W)`` and volumes ``(B, C, D, H, W)`` alike (the complex
wrappers as they are, :class:`SelfEnsemble` with ``spatial_dims=3``), provided the wrapped model
does.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import nn

from deepinv_lab.errors import UserError
from deepinv_lab.functional import channels_to_complex, complex_to_channels
from deepinv_lab.models.base import Model
from deepinv_lab.models.complex_norm import (
    denormalise_complex_channels,
    normalise_complex_channels,
)
from deepinv_lab.models.layers import check_spatial_dims


class ComplexWrapper(Model):
    """Applies a real model to complex images: ``channels_to_complex(f(complex_to_channels(x)))``.

    Args:
        model: a real network mapping ``(B, 2C, *spatial)`` to ``(B, 2C', *spatial)`` (real and
            imaginary parts as channels, layout of :func:`complex_to_channels`).

    Shapes: ``(B, C, H, W)`` complex -> ``(B, C', H, W)`` complex, or volumes
    ``(B, C, D, H, W)`` -> ``(B, C', D, H, W)`` when ``model`` takes volumes.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def _check(self, x: torch.Tensor) -> None:
        if not x.is_complex() or x.ndim not in (4, 5):
            raise UserError(
                f"{type(self).__name__} expects a complex (B, C, H, W) or (B, C, D, H, W) "
                f"tensor, got dtype {x.dtype} with shape {tuple(x.shape)}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, *spatial)`` complex -> ``(B, C', *spatial)`` complex."""
        self._check(x)
        return channels_to_complex(self.model(complex_to_channels(x)))

    @classmethod
    def example(cls) -> tuple[ComplexWrapper, torch.Tensor]:
        """A wrapped 3x3 conv (2 -> 2 real channels) on a ``(2, 1, 9, 7)`` complex input."""
        model = nn.Conv2d(2, 2, kernel_size=3, padding=1)
        return cls(model), torch.randn(2, 1, 9, 7, dtype=torch.complex64)

    @classmethod
    def example_3d(cls) -> tuple[ComplexWrapper, torch.Tensor]:
        """A wrapped 3x3x3 conv (2 -> 2 real channels) on a ``(2, 1, 5, 6, 7)`` complex volume."""
        model = nn.Conv3d(2, 2, kernel_size=3, padding=1)
        return cls(model), torch.randn(2, 1, 5, 6, 7, dtype=torch.complex64)


class NormalizedComplexWrapper(ComplexWrapper):
    """:class:`ComplexWrapper` with the normalisation of fastMRI's ``NormUnet`` around the model.

    ``x -> complex_to_channels -> normalise (real half and imaginary half each by its own mean
    and unbiased std, :func:`normalise_complex_channels`) -> model -> un-normalise ->
    channels_to_complex``. Unlike :class:`~deepinv_lab.models.unet.NormUnet` there is no padding
    to a multiple of 16: the wrapped model must accept ``H, W`` as they are. So for ``H, W``
    multiples of 16, ``NormalizedComplexWrapper(unet)`` equals a ``NormUnet`` holding ``unet``.
    A constant input (zero standard deviation) gives NaNs, as in fastMRI. On volumes the
    statistics are over channels and voxels.

    Shapes: ``(B, C, *spatial)`` complex -> ``(B, C', *spatial)`` complex.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, *spatial)`` complex -> ``(B, C', *spatial)`` complex."""
        self._check(x)
        normed, mean, std = normalise_complex_channels(complex_to_channels(x))
        out = denormalise_complex_channels(self.model(normed), mean, std)
        return channels_to_complex(out)


#: A transform of :func:`self_ensemble`: quarter turns in the last two dims, after flipping the
#: listed dims.
Transform = tuple[int, tuple[int, ...]]


def _transform(x: torch.Tensor, rotations: int, flips: tuple[int, ...]) -> torch.Tensor:
    """``rot90^rotations(flip_flips(x))``, the rotation in the last two dims."""
    if flips:
        x = x.flip(flips)
    return torch.rot90(x, rotations, dims=(-2, -1)) if rotations else x


def _transform_inverse(x: torch.Tensor, rotations: int, flips: tuple[int, ...]) -> torch.Tensor:
    if rotations:
        x = torch.rot90(x, -rotations, dims=(-2, -1))
    return x.flip(flips) if flips else x


#: The transform groups of :func:`self_ensemble`: flips, or flips and 90-degree rotations.
SELF_ENSEMBLE_MODES = ("x2", "x8")


def self_ensemble_transforms(mode: str, spatial_dims: int = 2) -> list[Transform]:
    """The transforms ``(quarter turns, flipped dims)`` averaged by :func:`self_ensemble`.

    Images: ``"x2"`` identity and the W flip; ``"x8"`` the 8 dihedral transforms (4 rotations,
    each with and without the W flip). Volumes: ``"x2"`` identity and the W flip; ``"x8"`` the
    8 combinations of flips of D, H and W (no rotations: the 48 symmetries of the cube would
    cost 48 forward passes, and anisotropic voxels rarely allow them).
    """
    check_self_ensemble_mode(mode, "self_ensemble")
    if spatial_dims == 2 and mode == "x8":
        return [(k, flips) for k in range(4) for flips in ((), (-1,))]
    if mode == "x2":
        return [(0, ()), (0, (-1,))]
    axes = (-3, -2, -1)
    return [(0, flips) for n in range(4) for flips in itertools.combinations(axes, n)]


def check_self_ensemble_mode(mode: str, owner: str, name: str = "mode") -> None:
    """Raise a :class:`~deepinv_lab.errors.UserError` naming ``owner`` and the argument ``name``
    unless ``mode`` is one of :data:`SELF_ENSEMBLE_MODES`."""
    if mode not in SELF_ENSEMBLE_MODES:
        raise UserError(f"{owner}: {name} must be 'x2' or 'x8', got {mode!r}")


def self_ensemble(
    fn: Callable[..., torch.Tensor],
    x: torch.Tensor,
    *args: Any,
    mode: str = "x8",
    spatial_dims: int = 2,
    **kwargs: Any,
) -> torch.Tensor:
    """``(1/|G|) sum_{T in G} T^{-1} fn(T x, *args, **kwargs)`` over the transforms
    :func:`self_ensemble_transforms` of ``x``'s last ``spatial_dims`` dimensions (see
    :class:`SelfEnsemble`)."""
    transforms = self_ensemble_transforms(mode, check_spatial_dims(spatial_dims, "self_ensemble"))
    total = None
    for k, flips in transforms:
        out = _transform_inverse(fn(_transform(x, k, flips), *args, **kwargs), k, flips)
        total = out if total is None else total + out
    return total / len(transforms)


class SelfEnsemble(Model):
    """Averages a model over flips and 90-degree rotations (geometric self-ensemble).

    ``f_ens(x) = (1/|G|) sum_{T in G} T^{-1} f(T x)``, with ``G`` = {identity, horizontal flip}
    (``"x2"``) or the 8 dihedral transforms (``"x8"``: 4 rotations, each with and without a
    horizontal flip). ``f_ens`` is equivariant to every ``T`` in ``G``
    (``f_ens(T x) = T f_ens(x)``), and equals ``f`` when ``f`` already is.

    Works for image-to-image models ``f(x)`` and for Recons ``f(y, system)``: the transform is
    applied to the first argument only (the image, or measurements that are images) and the
    other arguments are passed unchanged. That is correct only when the System commutes with the
    transforms, ``A(T x) = T A(x)``: denoising (``A`` = identity), masking or blur with a
    symmetric kernel and no per-pixel parameters, and super-resolution by block averaging with
    ``H, W`` multiples of the factor (rotations also need ``H == W`` when the System holds
    shape-dependent tensors). It is NOT correct for MRI (coil maps and sampling masks are not
    rotated with k-space): there, apply the ensemble to an image-domain model instead.

    For volumes (``spatial_dims=3``) the group is made of flips only: ``"x2"`` identity and the
    W flip, ``"x8"`` the 8 combinations of D, H and W flips (the 48 rotations and reflections of
    the cube would be 48 forward passes); see :func:`self_ensemble_transforms`.

    Args:
        model: the network or Recon to average.
        mode: ``"x2"`` or ``"x8"``.
        spatial_dims: 2 for images, 3 for volumes (which group ``"x8"`` means).

    Shapes: those of ``model``; its output must be an image ``(..., H', W')`` (or a volume
    ``(..., D', H', W')``) that transforms like the input (rotations swap ``H'`` and ``W'``).
    """

    def __init__(self, model: nn.Module, mode: Literal["x2", "x8"] = "x8", spatial_dims: int = 2):
        super().__init__()
        check_self_ensemble_mode(mode, "SelfEnsemble")
        self.spatial_dims = check_spatial_dims(spatial_dims, "SelfEnsemble")
        self.model = model
        self.mode = mode
        #: ``(quarter turns, flipped dims)`` of each transform averaged.
        self.transforms = self_ensemble_transforms(mode, spatial_dims)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        """``model``'s output averaged over the transforms of ``x``."""
        return self_ensemble(
            self.model, x, *args, mode=self.mode, spatial_dims=self.spatial_dims, **kwargs
        )

    @classmethod
    def example(cls) -> tuple[SelfEnsemble, torch.Tensor]:
        """A x8 ensemble of a 3x3 conv on a non-square ``(2, 1, 9, 7)`` input."""
        return cls(nn.Conv2d(1, 1, kernel_size=3, padding=1)), torch.randn(2, 1, 9, 7)

    @classmethod
    def example_3d(cls) -> tuple[SelfEnsemble, torch.Tensor]:
        """A x8 (flips) ensemble of a 3x3x3 conv on a ``(2, 1, 5, 6, 7)`` volume."""
        model = nn.Conv3d(1, 1, kernel_size=3, padding=1)
        return cls(model, spatial_dims=3), torch.randn(2, 1, 5, 6, 7)
