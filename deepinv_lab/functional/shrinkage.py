"""Shrinkage: the proximal operator of the (weighted) l1 norm."""

from __future__ import annotations

from numbers import Real

import torch

from deepinv_lab.errors import UserError


def soft_threshold(x: torch.Tensor, threshold: float | torch.Tensor) -> torch.Tensor:
    """Soft-thresholding ``sgn(x) max(|x| - t, 0)``, the proximal operator of ``t ||x||_1``.

    For complex ``x`` the magnitude shrinks and the phase stays: ``x / |x| max(|x| - t, 0)``
    (zero where ``x`` is zero). Differentiable almost everywhere.

    Args:
        x: real or complex tensor.
        threshold: ``t >= 0``, a number or a real tensor broadcastable against ``x`` (one threshold
            per sample, channel or coefficient).

    Returns:
        A tensor of the shape and dtype of ``x``.
    """
    if isinstance(threshold, Real) and threshold < 0:
        raise UserError(f"soft_threshold: threshold must be >= 0, got {threshold}")
    magnitude = x.abs()
    threshold = torch.as_tensor(threshold, dtype=magnitude.dtype, device=x.device)
    return torch.sgn(x) * torch.relu(magnitude - threshold)
