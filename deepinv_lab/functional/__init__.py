"""Pure tensor operations shared by every block: centered FFTs, complex/real conversion, RSS, crops,
bicubic upsampling, soft-thresholding.

Everything here is stateless, differentiable and works on native complex tensors.
"""

from deepinv_lab.functional.complex import (
    apply_to_real_parts,
    channels_to_complex,
    complex_to_channels,
)
from deepinv_lab.functional.crop import center_crop, center_crop_to_smallest
from deepinv_lab.functional.fft import fft1c, fft2c, fft3c, ifft1c, ifft2c, ifft3c
from deepinv_lab.functional.resize import upsample_bicubic
from deepinv_lab.functional.rss import rss
from deepinv_lab.functional.shrinkage import soft_threshold

__all__ = [
    "apply_to_real_parts",
    "center_crop",
    "center_crop_to_smallest",
    "channels_to_complex",
    "complex_to_channels",
    "fft1c",
    "fft2c",
    "fft3c",
    "ifft1c",
    "ifft2c",
    "ifft3c",
    "rss",
    "soft_threshold",
    "upsample_bicubic",
]
