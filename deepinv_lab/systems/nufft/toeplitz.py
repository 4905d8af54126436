"""The Toeplitz embedding of a NUFFT's normal operator ``F^H W F``.

``(F^H W F x)_n = sum_n' x_n' K(n - n')`` with ``K(d) = sum_m w_m exp(i omega_m . d)`` for the
offsets ``d`` of an ``(H, W)`` image, ``|d_0| < H``, ``|d_1| < W``. Zero-padding ``x`` to
``(2H, 2W)`` turns this convolution into a circular one, which FFTs apply exactly:
``normal(x) = crop(ifft2(fft2(pad(x)) * fft2(K_circ)))``. ``K`` on the ``(2H, 2W)`` offsets
``[-H, H) x [-W, W)`` is a type-1 NUFFT of the weights onto a ``(2H, 2W)`` grid, so a backend
builds the kernel with one adjoint NUFFT (:func:`kernel_from_offsets`).
"""

from __future__ import annotations

import torch


def kernel_from_offsets(offsets: torch.Tensor) -> torch.Tensor:
    """The FFT-domain kernel from ``K`` sampled at the offsets ``[-H, H) x [-W, W)``.

    ``offsets`` is ``(..., 2H, 2W)`` with offset ``(0, 0)`` at index ``(H, W)`` (the layout of a
    centered type-1 NUFFT); the result, of the same shape, is what :func:`toeplitz_filter` takes.
    """
    circulant = torch.fft.ifftshift(offsets, dim=(-2, -1))  # offset d at index d mod 2N
    return torch.fft.fft2(circulant)


def toeplitz_filter(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """``F^H W F x`` for ``(B, C, H, W)`` images ``x`` and a ``(2H, 2W)`` or ``(B, 1, 2H, 2W)``
    FFT-domain kernel from :func:`kernel_from_offsets`.

    ``fft2(x, s=(2H, 2W))`` zero-pads inside the transform. Skipping the transforms of the known
    zero rows (a 1D FFT along each axis in turn) does 3/4 of the arithmetic but measured 2x slower
    on the CPU: the FFT along the height is strided.
    """
    height, width = x.shape[-2:]
    spectrum = torch.fft.fft2(x, s=(2 * height, 2 * width)).mul_(kernel)
    return torch.fft.ifft2(spectrum)[..., :height, :width]
