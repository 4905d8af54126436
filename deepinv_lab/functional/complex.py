"""Conversion between native complex tensors and real tensors with real/imaginary as channels.

Models see real tensors; Systems and Optimization blocks use complex ones. These two functions are
the one boundary between the worlds. The channel layout is
``[re_0, ..., re_{C-1}, im_0, ..., im_{C-1}]`` along ``dim``, so a ``(B, C, H, W)`` complex
tensor becomes ``(B, 2C, H, W)`` real, which is the layout of fastMRI's ``NormUnet``.
"""

from collections.abc import Callable

import torch


def complex_to_channels(x: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """``(B, C, H, W)`` complex -> ``(B, 2C, H, W)`` real: real parts, then imaginary parts."""
    if not x.is_complex():
        raise TypeError(f"complex_to_channels expects a complex tensor, got {x.dtype}")
    return torch.cat([x.real, x.imag], dim=dim)


def channels_to_complex(x: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """``(B, 2C, H, W)`` real -> ``(B, C, H, W)`` complex (inverse of complex_to_channels)."""
    if x.is_complex():
        raise TypeError(f"channels_to_complex expects a real tensor, got {x.dtype}")
    if x.shape[dim] % 2:
        raise ValueError(
            f"channels_to_complex needs an even number of channels along dim {dim}, "
            f"got shape {tuple(x.shape)}"
        )
    if x.dtype in (torch.float16, torch.bfloat16):
        # Under mixed precision, networks emit half floats; complex32 has almost no FFT support
        # (and bfloat16 has no complex type), so complex data always stays in full precision.
        x = x.float()
    real, imag = torch.chunk(x, 2, dim=dim)
    return torch.complex(real.contiguous(), imag.contiguous())


def apply_to_real_parts(
    transform: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor
) -> torch.Tensor:
    """``transform`` (a real linear map) applied to the real and imaginary parts of a complex
    ``x`` (to ``x`` itself when it is real): real filters on complex images."""
    if x.is_complex():
        return torch.complex(transform(x.real), transform(x.imag))
    return transform(x)
