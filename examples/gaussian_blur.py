"""A System written in user code: Gaussian blur, trained from a config with nothing else written.

``GaussianBlur`` is a :class:`~deepinv_lab.systems.base.LinearSystem`: ``forward`` blurs (a
separable Gaussian, circular borders), ``adjoint`` applies the transposed blur, which for a
symmetric kernel is the same blur. Its constructor takes plain numbers, so a config names it::

    "physics": {"class_path": "deepinv_lab.data.physics.LinearPhysics", "init_args": {
        "system": {"class_path": "gaussian_blur.GaussianBlur", "init_args": {"sigma": 2.0}},
        "noise": {"class_path": "deepinv_lab.data.physics.Gaussian",
                  "init_args": {"sigma": 0.01}}}}

and ``PYTHONPATH=examples deepinv-lab fit --config examples/deblur.json`` trains a deblurring
network on the built-in photographs (``examples/`` on the path makes ``gaussian_blur``
importable, as any module of yours would be).

Run this file to check the adjoint: ``python examples/gaussian_blur.py``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from deepinv_lab.errors import UserError
from deepinv_lab.systems import LinearSystem


class GaussianBlur(LinearSystem):
    """``A x = g * x``: circular convolution with a normalised 2D Gaussian of standard deviation
    ``sigma`` pixels, truncated at ``3 sigma``; self-adjoint (the kernel is symmetric).

    Shapes: ``(B, C, H, W)`` real or complex -> the same.
    """

    accepts_real = True

    def __init__(self, sigma: float = 2.0):
        super().__init__()
        if not sigma > 0:
            raise UserError(f"GaussianBlur: sigma must be > 0, got {sigma}")
        radius = max(1, math.ceil(3 * sigma))
        offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
        taps = torch.exp(-(offsets**2) / (2 * sigma**2))
        self.register_buffer("taps", (taps / taps.sum()).float())
        self.sigma = sigma

    def _blur(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_complex():
            return torch.complex(self._blur(x.real), self._blur(x.imag))
        batch, channels, height, width = x.shape
        radius = self.taps.numel() // 2
        if radius >= min(height, width):
            raise UserError(
                f"GaussianBlur(sigma={self.sigma}): the kernel radius {radius} does not fit "
                f"images of {height} x {width}"
            )
        taps = self.taps.to(x.dtype)
        flat = x.reshape(batch * channels, 1, height, width)
        flat = F.pad(flat, (radius, radius, 0, 0), mode="circular")
        flat = F.conv2d(flat, taps.view(1, 1, 1, -1))
        flat = F.pad(flat, (0, 0, radius, radius), mode="circular")
        flat = F.conv2d(flat, taps.view(1, 1, -1, 1))
        return flat.reshape(batch, channels, height, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._blur(x)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self._blur(y)  # a symmetric kernel: the correlation is the convolution

    @classmethod
    def example(cls, batch_size: int = 2, dtype: torch.dtype = torch.float32):
        return cls(1.5), torch.randn(batch_size, 1, 16, 12, dtype=dtype)


if __name__ == "__main__":
    blur, x = GaussianBlur.example(dtype=torch.float64)
    print(f"GaussianBlur adjointness error: {blur.adjointness_error(x):.1e}")
