"""Training losses, all called as ``loss(pred, target, data_range)``.

:class:`SSIMLoss` is ``1 - SSIM`` with fastMRI's ``SSIMLoss`` formula (the loss VarNet trains on);
the SSIM statistics come from :func:`deepinv_lab.training.metrics.ssim_map`, the one implementation
shared with the evaluation metric. :class:`L1Loss` and :class:`MSELoss` are the pixel losses with
the same call signature (``data_range`` unused). :func:`make_loss` builds one from its name.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from deepinv_lab.errors import UserError
from deepinv_lab.training.metrics import check_win_size, ssim_map


class SSIMLoss(nn.Module):
    """``1 - SSIM(pred, target)`` with a uniform ``win_size`` window and sample covariance.

    Equal to ``fastmri.losses.SSIMLoss()(pred, target, data_range)``: the local SSIM of
    :func:`~deepinv_lab.training.metrics.ssim_map` is averaged over the batch, channels and all
    positions where the window lies inside the image.

    Args:
        win_size: side of the uniform window (odd).
        k1, k2: stabilizing constants, ``C1 = (k1 L)^2``, ``C2 = (k2 L)^2`` for ``L = data_range``.

    Shapes: ``pred``, ``target`` ``(B, C, H, W)`` real; ``data_range`` a float or ``(B,)`` (fastMRI
    passes the maximum of the target volume).
    """

    def __init__(self, win_size: int = 7, k1: float = 0.01, k2: float = 0.03):
        super().__init__()
        check_win_size(win_size, type(self).__name__)
        self.win_size, self.k1, self.k2 = win_size, k1, k2

    def forward(
        self, pred: Tensor, target: Tensor, data_range: Tensor | float, reduced: bool = True
    ) -> Tensor:
        """Scalar loss, or the per-position map ``1 - S`` of shape ``(B, C, H', W')`` when
        ``reduced=False``."""
        similarity = ssim_map(pred, target, data_range, self.win_size, self.k1, self.k2)
        return 1 - similarity.mean() if reduced else 1 - similarity

    def extra_repr(self) -> str:
        return f"win_size={self.win_size}, k1={self.k1}, k2={self.k2}"


class L1Loss(nn.Module):
    """Mean absolute error ``mean |pred - target|``; ``data_range`` is accepted and unused."""

    def forward(
        self, pred: Tensor, target: Tensor, data_range: Tensor | float | None = None
    ) -> Tensor:
        return F.l1_loss(pred, target)


class MSELoss(nn.Module):
    """Mean squared error ``mean |pred - target|^2``; ``data_range`` is accepted and unused."""

    def forward(
        self, pred: Tensor, target: Tensor, data_range: Tensor | float | None = None
    ) -> Tensor:
        return F.mse_loss(pred, target)


LOSSES: dict[str, type[nn.Module]] = {"ssim": SSIMLoss, "l1": L1Loss, "mse": MSELoss}


def make_loss(loss: str | nn.Module) -> nn.Module:
    """The loss named ``loss`` (a key of :data:`LOSSES`), or ``loss`` itself if it is a module."""
    if isinstance(loss, nn.Module):
        return loss
    try:
        return LOSSES[loss]()
    except (KeyError, TypeError):
        raise UserError(
            f"loss must be one of {sorted(LOSSES)} or an nn.Module called as "
            f"loss(pred, target, data_range), got {loss!r}"
        ) from None
