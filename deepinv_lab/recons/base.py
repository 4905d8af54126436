"""The Recon base class: ``forward(y, system) -> x_hat``, the signature of every reconstruction.

A Recon is a plain ``nn.Module`` (no Lightning), built from System, Model and Optimization blocks.
"""

from __future__ import annotations

import torch
from torch import nn

from deepinv_lab.systems.base import System


class Recon(nn.Module):
    """A reconstruction ``x_hat = R(y, A)`` from measurements ``y`` and their System ``A``.

    Subclasses implement ``forward(y, system)``. MRI Recons return magnitude images
    ``(B, 1, H, W)``.
    """

    def forward(self, y: torch.Tensor, system: System) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError(f"{type(self).__name__} must implement forward(y, system)")

    def diagnostics(self) -> dict[str, float]:
        """Numbers describing the last forward (and backward) pass, e.g. solver iteration counts
        and residuals, which the training module logs under ``train/`` and ``val/``; empty by
        default."""
        return {}
