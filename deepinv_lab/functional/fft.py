"""Centered, orthonormal 2D and 3D Fourier transforms over the last two (three) dimensions.

``fft2c(x) = fftshift(fft2(ifftshift(x)))`` with ``norm="ortho"``, the convention of fastMRI and
SigPy: the DC component sits at index ``(H // 2, W // 2)`` and the transform is unitary, so
``ifft2c`` is both its inverse and its adjoint. ``fft3c``/``ifft3c`` are the same over the last
three dimensions of a volume ``(..., X, Y, Z)`` (DC at ``(X // 2, Y // 2, Z // 2)``).

Speed: the two shifts are memory copies (two per shift, one per dimension), which cost twice the
FFT itself on a CPU. For even ``H`` and ``W`` a shift by half the size is a modulation:
``fft2c(x) = s * c * fft2(c * x)`` with the checkerboard ``c[m, n] = (-1)^(m + n)`` and the sign
``s = (-1)^(H/2 + W/2)``, and likewise for ``ifft2c``. The checkerboard is cached per size and
device, and the second product is taken in place on the FFT's fresh output, so a centered
transform costs one elementwise pass instead of four copies (``benchmarks/bench_multicoil.py``).
Odd sizes use the shifts. In 3D the checkerboard is ``(-1)^(m + n + p)`` and the sign
``(-1)^(X/2 + Y/2 + Z/2)``.
"""

import functools

import torch

_DIMS_2D = (-2, -1)
_DIMS_3D = (-3, -2, -1)


def _require_complex(x: torch.Tensor, name: str) -> None:
    if not x.is_complex():
        raise ValueError(
            f"{name} expects a complex tensor, got dtype {x.dtype} with shape {tuple(x.shape)}; "
            "convert 2-channel real data with deepinv_lab.functional.channels_to_complex first"
        )


@functools.lru_cache(maxsize=64)
def _checkerboards(
    sizes: tuple[int, ...], dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """``c = (-1)^(sum of indices)`` and ``s * c`` with ``s = (-1)^(sum of sizes / 2)``, real,
    of shape ``sizes``."""
    parity = torch.zeros((), dtype=torch.long, device=device)
    for axis, size in enumerate(sizes):
        index = torch.arange(size, device=device)
        parity = parity + index.reshape(size, *([1] * (len(sizes) - axis - 1)))
    checker = (1 - 2 * (parity % 2)).to(dtype)
    sign = -1 if sum(size // 2 for size in sizes) % 2 else 1
    return checker, sign * checker


def _centered(x: torch.Tensor, transform, dims: tuple[int, ...]) -> torch.Tensor:
    sizes = tuple(x.shape[d] for d in dims)
    if any(size % 2 for size in sizes):
        x = torch.fft.ifftshift(x, dim=dims)
        return torch.fft.fftshift(transform(x, dim=dims, norm="ortho"), dim=dims)
    checker, signed_checker = _checkerboards(sizes, x.real.dtype, x.device)
    return transform(x * checker, dim=dims, norm="ortho").mul_(signed_checker)


def _require_volume(x: torch.Tensor, name: str) -> None:
    _require_complex(x, name)
    if x.ndim < 3:
        raise ValueError(f"{name} expects a volume (..., X, Y, Z), got shape {tuple(x.shape)}")


def fft2c(x: torch.Tensor) -> torch.Tensor:
    """Centered orthonormal 2D FFT of a complex tensor ``(..., H, W)``."""
    _require_complex(x, "fft2c")
    return _centered(x, torch.fft.fft2, _DIMS_2D)


def ifft2c(k: torch.Tensor) -> torch.Tensor:
    """Centered orthonormal 2D inverse FFT of a complex tensor ``(..., H, W)``."""
    _require_complex(k, "ifft2c")
    return _centered(k, torch.fft.ifft2, _DIMS_2D)


def fft3c(x: torch.Tensor) -> torch.Tensor:
    """Centered orthonormal 3D FFT of a complex volume ``(..., X, Y, Z)`` over its last three
    dimensions: ``fftshift(fftn(ifftshift(x), norm="ortho"))``."""
    _require_volume(x, "fft3c")
    return _centered(x, torch.fft.fftn, _DIMS_3D)


def ifft3c(k: torch.Tensor) -> torch.Tensor:
    """Centered orthonormal 3D inverse FFT of a complex volume ``(..., X, Y, Z)``."""
    _require_volume(k, "ifft3c")
    return _centered(k, torch.fft.ifftn, _DIMS_3D)


def ifft1c(k: torch.Tensor, dim: int) -> torch.Tensor:
    """Centered orthonormal 1D inverse FFT of a complex tensor along ``dim``:
    ``fftshift(ifft(ifftshift(k)))`` (the readout transform of 3D Cartesian MRI)."""
    _require_complex(k, "ifft1c")
    k = torch.fft.ifftshift(k, dim=dim)
    return torch.fft.fftshift(torch.fft.ifft(k, dim=dim, norm="ortho"), dim=dim)


def fft1c(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Centered orthonormal 1D FFT of a complex tensor along ``dim``."""
    _require_complex(x, "fft1c")
    x = torch.fft.ifftshift(x, dim=dim)
    return torch.fft.fftshift(torch.fft.fft(x, dim=dim, norm="ortho"), dim=dim)


def clear_fft_cache() -> None:
    """Empty the per-size cache of the centred FFT's checkerboards (a ``torch.export`` capture
    leaves fake tensors in it)."""
    _checkerboards.cache_clear()
