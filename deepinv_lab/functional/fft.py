"""Centered, orthonormal 2D Fourier transforms over the last two dimensions.

``fft2c(x) = fftshift(fft2(ifftshift(x)))`` with ``norm="ortho"``, the convention of fastMRI and
SigPy: the DC component sits at index ``(H // 2, W // 2)`` and the transform is unitary, so
``ifft2c`` is both its inverse and its adjoint.

Speed: the two shifts are memory copies (two per shift, one per dimension), which cost twice the
FFT itself on a CPU. For even ``H`` and ``W`` a shift by half the size is a modulation:
``fft2c(x) = s * c * fft2(c * x)`` with the checkerboard ``c[m, n] = (-1)^(m + n)`` and the sign
``s = (-1)^(H/2 + W/2)``, and likewise for ``ifft2c``. The checkerboard is cached per size and
device, and the second product is taken in place on the FFT's fresh output, so a centered
transform costs one elementwise pass instead of four copies (``benchmarks/bench_multicoil.py``).
Odd sizes use the shifts.
"""

import functools

import torch

_DIMS = (-2, -1)


def _require_complex(x: torch.Tensor, name: str) -> None:
    if not x.is_complex():
        raise ValueError(
            f"{name} expects a complex tensor, got dtype {x.dtype} with shape {tuple(x.shape)}; "
            "convert 2-channel real data with deepinv_lab.functional.channels_to_complex first"
        )


@functools.lru_cache(maxsize=64)
def _checkerboards(
    height: int, width: int, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """``c = (-1)^(m + n)`` and ``s * c`` with ``s = (-1)^(H/2 + W/2)``, real, ``(H, W)``."""
    rows = torch.arange(height, device=device)[:, None]
    cols = torch.arange(width, device=device)[None, :]
    checker = (1 - 2 * ((rows + cols) % 2)).to(dtype)
    sign = -1 if (height // 2 + width // 2) % 2 else 1
    return checker, sign * checker


def _centered(x: torch.Tensor, transform) -> torch.Tensor:
    height, width = x.shape[-2], x.shape[-1]
    if height % 2 or width % 2:
        x = torch.fft.ifftshift(x, dim=_DIMS)
        return torch.fft.fftshift(transform(x, dim=_DIMS, norm="ortho"), dim=_DIMS)
    checker, signed_checker = _checkerboards(height, width, x.real.dtype, x.device)
    return transform(x * checker, dim=_DIMS, norm="ortho").mul_(signed_checker)


def fft2c(x: torch.Tensor) -> torch.Tensor:
    """Centered orthonormal 2D FFT of a complex tensor ``(..., H, W)``."""
    _require_complex(x, "fft2c")
    return _centered(x, torch.fft.fft2)


def ifft2c(k: torch.Tensor) -> torch.Tensor:
    """Centered orthonormal 2D inverse FFT of a complex tensor ``(..., H, W)``."""
    _require_complex(k, "ifft2c")
    return _centered(k, torch.fft.ifft2)
