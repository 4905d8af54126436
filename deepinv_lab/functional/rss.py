"""Root-sum-of-squares coil combination."""

import torch


def rss(x: torch.Tensor, dim: int = 1, keepdim: bool = False) -> torch.Tensor:
    """Root-sum-of-squares ``sqrt(sum_c |x_c|^2)`` along the coil dimension ``dim``.

    Works for real and complex inputs; the result is real.
    """
    return torch.sqrt((x.abs() ** 2).sum(dim=dim, keepdim=keepdim))
