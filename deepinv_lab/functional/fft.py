"""Centered, orthonormal 2D Fourier transforms over the last two dimensions.

``fft2c(x) = fftshift(fft2(ifftshift(x)))`` with ``norm="ortho"``, the convention of fastMRI and
SigPy: the DC component sits at index ``(H // 2, W // 2)`` and the transform is unitary, so
``ifft2c`` is both its inverse and its adjoint.
"""

import torch

_DIMS = (-2, -1)


def _require_complex(x: torch.Tensor, name: str) -> None:
    if not x.is_complex():
        raise TypeError(
            f"{name} expects a complex tensor, got dtype {x.dtype} with shape {tuple(x.shape)}; "
            "convert 2-channel real data with deepinv_lab.functional.channels_to_complex first"
        )


def fft2c(x: torch.Tensor) -> torch.Tensor:
    """Centered orthonormal 2D FFT of a complex tensor ``(..., H, W)``."""
    _require_complex(x, "fft2c")
    x = torch.fft.ifftshift(x, dim=_DIMS)
    x = torch.fft.fft2(x, dim=_DIMS, norm="ortho")
    return torch.fft.fftshift(x, dim=_DIMS)


def ifft2c(k: torch.Tensor) -> torch.Tensor:
    """Centered orthonormal 2D inverse FFT of a complex tensor ``(..., H, W)``."""
    _require_complex(k, "ifft2c")
    k = torch.fft.ifftshift(k, dim=_DIMS)
    k = torch.fft.ifft2(k, dim=_DIMS, norm="ortho")
    return torch.fft.fftshift(k, dim=_DIMS)
