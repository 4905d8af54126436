"""Discrete image gradient with circular boundary, its adjoint, and total variation.

``finite_difference`` is SigPy's ``sigpy.linop.FiniteDifference`` on the last two axes: along each
axis ``d x = x - roll(x, 1)``, i.e. ``d x[i] = x[i] - x[i - 1]`` with index ``-1`` wrapping to the
end. Its adjoint is ``d^H g = g - roll(g, -1)``.
"""

from __future__ import annotations

import torch

#: The gradient components sit in this dimension of ``finite_difference``'s output.
GRADIENT_DIM = -3


def finite_difference(x: torch.Tensor) -> torch.Tensor:
    """``G x``: circular differences ``x - roll(x, 1)`` along H and along W.

    Args:
        x: real or complex image ``(..., H, W)``, e.g. ``(B, C, H, W)``.

    Returns:
        ``(..., 2, H, W)``: the H difference first, then the W difference.
    """
    return torch.stack((x - x.roll(1, dims=-2), x - x.roll(1, dims=-1)), dim=GRADIENT_DIM)


def finite_difference_adjoint(gradient: torch.Tensor) -> torch.Tensor:
    """``G^H g``, the exact adjoint of :func:`finite_difference`:
    ``(..., 2, H, W) -> (..., H, W)``."""
    along_h, along_w = gradient.unbind(dim=GRADIENT_DIM)
    return (along_h - along_h.roll(-1, dims=-2)) + (along_w - along_w.roll(-1, dims=-1))


def total_variation(x: torch.Tensor, isotropic: bool = True) -> torch.Tensor:
    """``||G x||`` summed over every dimension but the first (one value per sample, ``(B,)``).

    Isotropic: ``sum_pixels sqrt(|d_h x|^2 + |d_w x|^2)`` (the ``l_{1,2}`` norm); anisotropic:
    ``sum_pixels |d_h x| + |d_w x|`` (the ``l_1`` norm, SigPy's ``TotalVariationRecon``).
    Magnitudes are complex moduli.
    """
    gradient = finite_difference(x).abs()
    if isotropic:
        gradient = gradient.square().sum(dim=GRADIENT_DIM).sqrt()
    return gradient.flatten(1).sum(dim=1)
