"""The per-sample normalisation of complex images as channels, used by NormUnet and its wrapper."""

from __future__ import annotations

import torch


def normalise_complex_channels(
    x: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Standardise the real half and the imaginary half of ``(B, 2C, H, W)`` separately.

    The layout is that of :func:`~deepinv_lab.functional.complex_to_channels`; each half is
    shifted by its mean and divided by its unbiased standard deviation over channels and pixels,
    as in fastMRI's ``NormUnet``. Returns ``(normed, mean, std)``, ``mean`` and ``std`` of shape
    ``(B, 2, 1, 1, 1)``; undo with :func:`denormalise_complex_channels`.
    """
    b = x.shape[0]
    halves = x.reshape(b, 2, -1)
    mean = halves.mean(dim=2).view(b, 2, 1, 1, 1)
    std = halves.std(dim=2).view(b, 2, 1, 1, 1)
    normed = (x.reshape(b, 2, -1, *x.shape[-2:]) - mean) / std
    return normed.reshape(x.shape), mean, std


def denormalise_complex_channels(
    x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor
) -> torch.Tensor:
    """Inverse of :func:`normalise_complex_channels` for ``(B, 2C', H, W)`` (any ``C'``)."""
    b = x.shape[0]
    return (x.reshape(b, 2, -1, *x.shape[-2:]) * std + mean).reshape(x.shape)
