"""Pure tensor operations shared by every block: centered FFTs, complex/real conversion, RSS, crops,
bicubic upsampling.

Everything here is stateless, differentiable and works on native complex tensors.
"""

from deepinv_lab.functional.complex import channels_to_complex, complex_to_channels
from deepinv_lab.functional.crop import center_crop, center_crop_to_smallest
from deepinv_lab.functional.fft import fft2c, ifft2c
from deepinv_lab.functional.resize import upsample_bicubic
from deepinv_lab.functional.rss import rss

__all__ = [
    "center_crop",
    "center_crop_to_smallest",
    "channels_to_complex",
    "complex_to_channels",
    "fft2c",
    "ifft2c",
    "rss",
    "upsample_bicubic",
]
