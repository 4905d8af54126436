"""Center crops over the last two dimensions, with fastMRI's rounding convention."""

import torch


def center_crop(x: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Crop the last two dimensions of ``x`` to ``shape = (h, w)`` around the center.

    The crop starts at ``(H - h) // 2``, as in fastMRI's ``center_crop``, so that the DC sample of
    a centered FFT stays at the center of the crop.
    """
    h, w = int(shape[0]), int(shape[1])
    height, width = x.shape[-2], x.shape[-1]
    if not (0 < h <= height and 0 < w <= width):
        raise ValueError(
            f"center_crop: crop shape {(h, w)} does not fit input of shape {tuple(x.shape)}"
        )
    top = (height - h) // 2
    left = (width - w) // 2
    return x[..., top : top + h, left : left + w]


def center_crop_to_smallest(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop ``x`` and ``y`` to the smallest common spatial size (last two dimensions)."""
    shape = (min(x.shape[-2], y.shape[-2]), min(x.shape[-1], y.shape[-1]))
    return center_crop(x, shape), center_crop(y, shape)
