"""SSDU: self-supervised training from undersampled measurements alone (Yaman et al. 2020).

The sampled set ``Omega`` of each mask is split at random into ``Theta``, which the Recon sees,
and ``Lambda``, held out; the loss compares the measurements that the reconstruction from
``Theta`` predicts on ``Lambda`` with the held-out measurements (:func:`ssdu_loss`). Without the
split, ``||A x_hat - y||`` is met by any ``x_hat`` that copies the measured data.

:func:`split_mask` draws the split. It works on any real sampling mask ``(B, 1, H, W)`` or
fastMRI column mask ``(B, 1, 1, W)``; the System rebuilds itself with ``Theta`` through its own
``with_mask`` (every masked System has one), so nothing here knows a System's type.

Reference:
    B. Yaman, S. A. H. Hosseini, S. Moeller, J. Ellermann, K. Ugurbil, M. Akcakaya,
    "Self-supervised learning of physics-guided reconstruction neural networks without fully
    sampled reference data", Magn. Reson. Med. 84(6), 2020.
"""

from __future__ import annotations

from typing import Literal

import torch

from deepinv_lab.errors import UserError
from deepinv_lab.models.sensitivity import acs_window

#: how held-out locations are drawn: ``"uniform"`` among the sampled ones, or ``"gaussian"``,
#: weighted by a Gaussian centred on k-space with standard deviation a quarter of each side
#: (SSDU's ``Gaussian_selection``)
Selection = Literal["uniform", "gaussian"]
#: what is held out: single k-space ``"points"`` (SSDU: also within the sampled lines of a
#: column mask, whose split masks are then ``(B, 1, H, W)``) or whole ``"columns"`` of a column mask
Granularity = Literal["points", "columns"]


def check_split_options(holdout: float, selection: str, granularity: str, owner: str) -> None:
    """A UserError naming ``owner`` unless the split options are valid: ``holdout`` in
    ``(0, 1)``, a :data:`Selection` and a :data:`Granularity`."""
    if not 0 < holdout < 1:
        raise UserError(
            f"{owner}: holdout must be in (0, 1) (the held-out fraction), got {holdout}"
        )
    if selection not in ("uniform", "gaussian"):
        raise UserError(f"{owner}: selection must be 'uniform' or 'gaussian', got {selection!r}")
    if granularity not in ("points", "columns"):
        raise UserError(f"{owner}: granularity must be 'points' or 'columns', got {granularity!r}")


def split_mask(
    mask: torch.Tensor,
    holdout: float = 0.4,
    generator: torch.Generator | None = None,
    *,
    num_low_frequencies: int | torch.Tensor | None = None,
    center_block: int = 4,
    selection: Selection = "uniform",
    granularity: Granularity = "columns",
    height: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """SSDU split of a sampling mask ``Omega`` into disjoint ``Theta`` and ``Lambda``.

    ``Theta`` (given to the network) and ``Lambda`` (held out for the loss) are disjoint and
    ``Theta + Lambda = mask`` exactly (also for weighted masks: the split only chooses which
    locations go where). Per sample, ``round(holdout * |Omega|)`` sampled locations (at least
    one, at most all unprotected ones) go to ``Lambda``, drawn by ``selection``. The k-space
    centre is never held out, so the network always has its calibration data:

    * column masks ``(B, 1, 1, W)``: the ACS columns, the union of
      :func:`~deepinv_lab.models.sensitivity.acs_window` derived from the mask (what VarNet's
      sensitivity network derives) and, when given, the ``num_low_frequencies`` window;
    * 2D masks ``(B, 1, H, W)``: the central ``center_block x center_block`` block (rows and
      columns ``n // 2 - center_block // 2`` onwards), SSDU's 4 x 4 by default.

    Args:
        mask: real sampling mask, nonzero where sampled, ``(B, 1, 1, W)`` or ``(B, 1, H, W)``.
            Each of the ``B`` samples is split independently (a shared ``(1, ...)`` mask is
            split once per sample when ``num_low_frequencies`` has ``B`` entries).
        holdout: the fraction of sampled locations held out, ``rho`` in ``(0, 1)``.
        generator: random generator (on the CPU or the mask's device) for reproducible splits.
        num_low_frequencies: ACS width of column masks, an int or ``(B,)``; ignored for 2D masks.
        center_block: side of the protected centre of 2D masks.
        selection: ``"uniform"`` or ``"gaussian"`` (see :data:`Selection`).
        granularity: for column masks, hold out whole ``"columns"`` or single ``"points"`` of
            the sampled columns (SSDU's choice); ``"points"`` needs the k-space ``height``.
        height: the number of k-space rows (readout samples), for ``granularity="points"``.

    Returns:
        ``(theta, lam)``, typed like ``mask``, shaped like it, or ``(B, 1, height, W)`` for
        point splits of column masks.
    """
    check_split_options(holdout, selection, granularity, "split_mask")
    if mask.ndim != 4 or mask.shape[1] != 1 or mask.is_complex():
        raise ValueError(
            "split_mask expects a real mask of shape (B, 1, 1, W) or (B, 1, H, W), got dtype "
            f"{mask.dtype} with shape {tuple(mask.shape)}"
        )
    rows, width = mask.shape[-2:]
    if rows == 1:  # column mask: the ACS columns are protected over every row
        protected = acs_window(width, mask)
        if num_low_frequencies is not None:
            protected = protected | acs_window(width, mask, num_low_frequencies)
        if granularity == "points":
            if height is None or height < 1:
                raise UserError("split_mask: point splits of a column mask need its height")
            mask = mask.expand(*mask.shape[:2], height, width)
            protected = protected.expand(*protected.shape[:2], height, width)
    else:
        protected = torch.zeros(mask.shape, dtype=torch.bool, device=mask.device)
        top = slice(max(rows // 2 - center_block // 2, 0), rows // 2 + (center_block + 1) // 2)
        left = slice(max(width // 2 - center_block // 2, 0), width // 2 + (center_block + 1) // 2)
        protected[..., top, left] = True
    # a shared (1, ...) mask with per-sample ACS widths (B,) is split per sample
    mask, protected = torch.broadcast_tensors(mask, protected)
    batch = mask.shape[0]
    sampled = mask != 0
    candidates = (sampled & ~protected).reshape(batch, -1)
    available = candidates.sum(dim=1)
    wanted = torch.round(holdout * sampled.reshape(batch, -1).sum(dim=1).to(torch.float64))
    count = torch.minimum(wanted.to(torch.long).clamp(min=1), available)
    device = generator.device if generator is not None else mask.device
    uniform = torch.rand(candidates.shape, generator=generator, device=device).to(mask.device)
    if selection == "uniform":
        scores = uniform
    else:
        # weighted sampling without replacement (Efraimidis & Spirakis): the `count` smallest
        # -log(u) / w are a draw with probabilities proportional to w, one location at a time
        weights = _gaussian_weights(mask.shape[-2:], mask.device).reshape(1, -1)
        scores = -torch.log(uniform.clamp(min=torch.finfo(uniform.dtype).tiny)) / weights
    scores = torch.where(candidates, scores, torch.full_like(scores, float("inf")))
    ranks = scores.argsort(dim=1).argsort(dim=1)
    held = (ranks < count[:, None]).reshape(mask.shape)
    lam = torch.where(held, mask, torch.zeros_like(mask))
    return mask - lam, lam


def _gaussian_weights(shape: torch.Size, device: torch.device) -> torch.Tensor:
    """SSDU's selection density over ``shape = (rows, cols)``: a Gaussian centred on the k-space
    centre ``(n // 2)`` with standard deviation ``n / 4`` along each side (a column mask's one
    row gets weight 1)."""
    axes = []
    for n in shape:
        offsets = torch.arange(n, device=device, dtype=torch.float64) - n // 2
        axes.append(torch.exp(-0.5 * (offsets / (n / 4)) ** 2) if n > 1 else offsets.new_ones(1))
    return (axes[0][:, None] * axes[1][None, :]).clamp(min=1e-300)


def ssdu_loss(estimate: torch.Tensor, y: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """SSDU's normalised l1-l2 loss on the held-out locations ``Lambda``, averaged over the batch:

    ``||Lambda (est - y)||_2 / ||Lambda y||_2 + ||Lambda (est - y)||_1 / ||Lambda y||_1``

    per sample, on magnitudes of complex entries (``|.|`` of each k-space value).

    Args:
        estimate: predicted measurements ``(B, ...)``, e.g.
            :meth:`~deepinv_lab.recons.base.Recon.measurement_estimate`.
        y: the measurements, shaped like ``estimate``.
        lam: the held-out mask ``Lambda``, broadcastable against ``y`` (:func:`split_mask`).
    """
    if estimate.shape != y.shape:
        raise ValueError(
            f"ssdu_loss: the estimate {tuple(estimate.shape)} and the measurements "
            f"{tuple(y.shape)} differ in shape"
        )
    residual = (lam * (estimate - y)).abs().flatten(1)
    reference = (lam * y).abs().flatten(1)
    tiny = torch.finfo(residual.dtype).tiny
    l2 = residual.norm(dim=1) / reference.norm(dim=1).clamp(min=tiny)
    l1 = residual.sum(dim=1) / reference.sum(dim=1).clamp(min=tiny)
    return (l2 + l1).mean()
