"""Wrappers that change how a model is applied: to complex images, with normalisation, or averaged
over flips and rotations (self-ensemble)."""

from __future__ import annotations

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


class ComplexWrapper(Model):
    """Applies a real model to complex images: ``channels_to_complex(f(complex_to_channels(x)))``.

    Args:
        model: a real network mapping ``(B, 2C, H, W)`` to ``(B, 2C', H, W)`` (real and
            imaginary parts as channels, layout of :func:`complex_to_channels`).

    Shapes: ``(B, C, H, W)`` complex -> ``(B, C', H, W)`` complex.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def _check(self, x: torch.Tensor) -> None:
        if not x.is_complex() or x.ndim != 4:
            raise ValueError(
                f"{type(self).__name__} expects a complex (B, C, H, W) tensor, "
                f"got dtype {x.dtype} with shape {tuple(x.shape)}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` complex -> ``(B, C', H, W)`` complex."""
        self._check(x)
        return channels_to_complex(self.model(complex_to_channels(x)))

    @classmethod
    def example(cls) -> tuple[ComplexWrapper, torch.Tensor]:
        """A wrapped 3x3 conv (2 -> 2 real channels) on a ``(2, 1, 9, 7)`` complex input."""
        model = nn.Conv2d(2, 2, kernel_size=3, padding=1)
        return cls(model), torch.randn(2, 1, 9, 7, dtype=torch.complex64)


class NormalizedComplexWrapper(ComplexWrapper):
    """:class:`ComplexWrapper` with the normalisation of fastMRI's ``NormUnet`` around the model.

    ``x -> complex_to_channels -> normalise (real half and imaginary half each by its own mean
    and unbiased std, :func:`normalise_complex_channels`) -> model -> un-normalise ->
    channels_to_complex``. Unlike :class:`~deepinv_lab.models.unet.NormUnet` there is no padding
    to a multiple of 16: the wrapped model must accept ``H, W`` as they are. So for ``H, W``
    multiples of 16, ``NormalizedComplexWrapper(unet)`` equals a ``NormUnet`` holding ``unet``.
    A constant input (zero standard deviation) gives NaNs, as in fastMRI.

    Shapes: ``(B, C, H, W)`` complex -> ``(B, C', H, W)`` complex.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` complex -> ``(B, C', H, W)`` complex."""
        self._check(x)
        normed, mean, std = normalise_complex_channels(complex_to_channels(x))
        out = denormalise_complex_channels(self.model(normed), mean, std)
        return channels_to_complex(out)


def _dihedral(x: torch.Tensor, rotations: int, flip: bool) -> torch.Tensor:
    """``rot90^rotations(flip_W(x))`` on the last two dims."""
    if flip:
        x = x.flip(-1)
    return torch.rot90(x, rotations, dims=(-2, -1))


def _dihedral_inverse(x: torch.Tensor, rotations: int, flip: bool) -> torch.Tensor:
    x = torch.rot90(x, -rotations, dims=(-2, -1))
    return x.flip(-1) if flip else x


#: The transform groups of :func:`self_ensemble`: flips, or flips and 90-degree rotations.
SELF_ENSEMBLE_MODES = ("x2", "x8")


def check_self_ensemble_mode(mode: str, owner: str, name: str = "mode") -> None:
    """Raise a :class:`~deepinv_lab.errors.UserError` naming ``owner`` and the argument ``name``
    unless ``mode`` is one of :data:`SELF_ENSEMBLE_MODES`."""
    if mode not in SELF_ENSEMBLE_MODES:
        raise UserError(f"{owner}: {name} must be 'x2' or 'x8', got {mode!r}")


def self_ensemble(
    fn: Callable[..., torch.Tensor], x: torch.Tensor, *args: Any, mode: str = "x8", **kwargs: Any
) -> torch.Tensor:
    """``(1/|G|) sum_{T in G} T^{-1} fn(T x, *args, **kwargs)`` over the flips (``"x2"``) or the
    8 flips/rotations (``"x8"``) of ``x``'s last two dimensions (see :class:`SelfEnsemble`)."""
    check_self_ensemble_mode(mode, "self_ensemble")
    rotations = (0,) if mode == "x2" else (0, 1, 2, 3)
    total = None
    for k in rotations:
        for flip in (False, True):
            out = _dihedral_inverse(fn(_dihedral(x, k, flip), *args, **kwargs), k, flip)
            total = out if total is None else total + out
    return total / (2 * len(rotations))


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

    Args:
        model: the network or Recon to average.
        mode: ``"x2"`` or ``"x8"``.

    Shapes: those of ``model``; its output must be an image ``(..., H', W')`` that transforms
    like the input (rotations swap ``H'`` and ``W'``).
    """

    def __init__(self, model: nn.Module, mode: Literal["x2", "x8"] = "x8"):
        super().__init__()
        check_self_ensemble_mode(mode, "SelfEnsemble")
        self.model = model
        self.mode = mode
        rotations = (0,) if mode == "x2" else (0, 1, 2, 3)
        self.transforms = [(k, flip) for k in rotations for flip in (False, True)]

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        """``model``'s output averaged over the transforms of ``x``."""
        return self_ensemble(self.model, x, *args, mode=self.mode, **kwargs)

    @classmethod
    def example(cls) -> tuple[SelfEnsemble, torch.Tensor]:
        """A x8 ensemble of a 3x3 conv on a non-square ``(2, 1, 9, 7)`` input."""
        return cls(nn.Conv2d(1, 1, kernel_size=3, padding=1)), torch.randn(2, 1, 9, 7)
