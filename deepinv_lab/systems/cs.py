"""Compressed sensing with a dense random Gaussian matrix."""

from __future__ import annotations

import math

import torch

from deepinv_lab.errors import UserError
from deepinv_lab.systems.base import LinearSystem


class CompressedSensing(LinearSystem):
    """``A x = Phi vec(x)``: a dense ``m x n`` Gaussian matrix applied to flattened images,
    ``n = C * H * W`` (``vec`` flattens ``(C, H, W)`` in row-major order).

    Entries are i.i.d. with ``E[Phi_ij] = 0`` and ``E|Phi_ij|^2 = 1 / m``: ``N(0, 1 / m)`` for a
    real matrix, circular complex Gaussian (real and imaginary parts ``N(0, 1 / (2 m))``) for a
    complex one. Then ``E||A x||^2 = ||x||^2`` and ``E[A^H A] = I``. ``A^H y = Phi^H y`` reshaped to
    ``(C, H, W)``.

    The matrix is drawn in float64 from ``torch.Generator().manual_seed(seed)`` and then cast, so
    the same seed gives the same matrix on every machine and, rounding aside, in every precision.
    One matrix serves the whole batch.

    Args:
        m: number of measurements.
        img_shape: ``(C, H, W)`` of the images.
        seed: seed of the matrix.
        dtype: dtype of the matrix: real (``torch.float32``) or complex (``torch.complex64``).

    Shapes: ``(B, C, H, W)`` -> ``(B, m)``; real or complex images (a complex matrix gives
    complex measurements).
    """

    accepts_real = True

    def __init__(
        self,
        m: int,
        img_shape: tuple[int, int, int],
        seed: int = 0,
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__()
        img_shape = tuple(int(s) for s in img_shape)
        if len(img_shape) != 3 or min(img_shape) < 1:
            raise UserError(f"CompressedSensing: img_shape must be (C, H, W), got {img_shape}")
        if m < 1:
            raise UserError(f"CompressedSensing: m must be >= 1, got {m}")
        if not (dtype.is_floating_point or dtype.is_complex):
            raise UserError(f"CompressedSensing: dtype must be real or complex, got {dtype}")
        self.m = int(m)
        self.img_shape = img_shape
        self.seed = seed
        n = math.prod(img_shape)
        generator = torch.Generator().manual_seed(seed)
        draw_dtype = torch.complex128 if dtype.is_complex else torch.float64
        # randn on a complex dtype has E|z|^2 = 1, so both cases scale by 1 / sqrt(m).
        matrix = torch.randn(self.m, n, generator=generator, dtype=draw_dtype) / math.sqrt(m)
        self.register_buffer("matrix", matrix.to(dtype))

    def _matrix_for(self, t: torch.Tensor) -> torch.Tensor:
        dtype = torch.promote_types(self.matrix.dtype, t.dtype)
        return self.matrix.to(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or tuple(x.shape[1:]) != self.img_shape:
            raise ValueError(
                f"CompressedSensing: image of shape {tuple(x.shape)} does not fit the matrix; "
                f"expected (B, {', '.join(map(str, self.img_shape))})"
            )
        matrix = self._matrix_for(x)
        return x.reshape(x.shape[0], -1).to(matrix.dtype) @ matrix.T

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        if y.ndim != 2 or y.shape[1] != self.m:
            raise ValueError(
                f"CompressedSensing: measurements of shape {tuple(y.shape)} do not fit the "
                f"matrix; expected (B, {self.m})"
            )
        matrix = self._matrix_for(y)
        x = y.to(matrix.dtype) @ matrix.conj()
        return x.reshape(y.shape[0], *self.img_shape)

    @classmethod
    def example(cls, batch_size: int = 2, dtype: torch.dtype = torch.complex64):
        img_shape = (2, 4, 5)
        system = cls(17, img_shape, seed=int(torch.randint(0, 2**31, ()).item()), dtype=dtype)
        return system, torch.randn(batch_size, *img_shape, dtype=dtype)
