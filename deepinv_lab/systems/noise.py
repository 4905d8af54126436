"""Noise blocks: non-linear, random Systems applied after the linear forward model."""

from __future__ import annotations

import torch

from deepinv_lab.systems.base import System


class ComplexGaussianNoise(System):
    """``y + n`` with circular complex Gaussian ``n``: real and imaginary parts i.i.d.
    ``N(0, sigma^2 / 2)``, so that ``E|n|^2 = sigma^2``.

    With the orthonormal FFT, noise of standard deviation ``sigma`` in k-space is noise of the
    same ``sigma`` in the image domain.

    Args:
        sigma: a float, or a tensor broadcastable against ``y`` (e.g. ``(B, 1, 1, 1)`` per sample).
    """

    def __init__(self, sigma: float | torch.Tensor):
        super().__init__()
        self.register_buffer("sigma", torch.as_tensor(sigma, dtype=torch.float32))
        if (self.sigma < 0).any():
            raise ValueError(f"ComplexGaussianNoise: sigma must be >= 0, got {sigma}")

    def forward(self, y: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if not y.is_complex():
            raise TypeError(f"ComplexGaussianNoise expects complex data, got {y.dtype}")
        noise = torch.randn(y.shape, dtype=y.dtype, device=y.device, generator=generator)
        # torch.randn on a complex dtype already draws each part with variance 1/2.
        return y + self.sigma.to(y.real.dtype) * noise
