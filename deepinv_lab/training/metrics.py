"""Image-quality metrics with fastMRI's evaluation conventions: SSIM, PSNR and NMSE.

Functions take ``pred`` and ``target`` of shape ``(B, C, H, W)`` (real; magnitude images), or
volumes ``(B, C, D, H, W)``, and return one value per sample, shape ``(B,)``:

* :func:`ssim` -- mean SSIM with a 7x7 uniform window, ``k1 = 0.01``, ``k2 = 0.03`` and the sample
  covariance (``N / (N - 1)``), averaged over the ``(H - 6) x (W - 6)`` positions where the window
  lies inside the image and over the channels. Per ``(H, W)`` slice this is
  ``skimage.metrics.structural_similarity(target, pred, win_size=7, data_range=data_range)``, which
  fastMRI's ``evaluate.ssim`` averages over the slices of a volume. For volumes
  ``(B, C, D, H, W)`` the window is a 7x7x7 cube (``N = 7^3`` in the covariance), as DIRECT's
  ``SSIM3D``, averaged over the ``(D - 6) x (H - 6) x (W - 6)`` positions inside the volume,
* :func:`psnr` -- ``10 log10(data_range^2 / mse)``, ``mse`` the mean over ``(C, *spatial)``,
* :func:`nmse` -- ``||target - pred||^2 / ||target||^2`` over ``(C, *spatial)``.

``data_range`` is a float or a tensor of shape ``(B,)``; fastMRI uses the maximum of the target
*volume* (``max_value`` in its HDF5 files), not of the slice. Passing a whole volume as one sample
``(1, slices, H, W)`` gives fastMRI's per-volume ``evaluate.ssim``, ``psnr`` and ``nmse``.

:func:`ssim_map` holds the one implementation of the SSIM statistics; the training loss
:class:`~deepinv_lab.training.losses.SSIMLoss` uses it too.

The :class:`torchmetrics.Metric` classes (:class:`SSIMMetric`, :class:`PSNRMetric`,
:class:`NMSEMetric`) accumulate the sum of per-sample values and the sample count with
``dist_reduce_fx="sum"``, so under DDP ``compute()`` is the mean over all samples of all processes,
the same as in one process. All three are updated as ``metric.update(pred, target, data_range)``
(:class:`NMSEMetric` ignores ``data_range``), so they also work in a
:class:`torchmetrics.MetricCollection`.
"""

from __future__ import annotations

from numbers import Integral

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric

from deepinv_lab.errors import UserError


def check_win_size(win_size: int, owner: str) -> None:
    """Raise a :class:`~deepinv_lab.errors.UserError` naming ``owner`` unless ``win_size`` (the
    side of the SSIM window) is an odd integer >= 3."""
    valid = isinstance(win_size, Integral) and not isinstance(win_size, bool)
    if not (valid and win_size >= 3 and win_size % 2 == 1):
        raise UserError(f"{owner}: win_size must be an odd integer >= 3, got {win_size!r}")


def _check_pair(pred: Tensor, target: Tensor, name: str) -> None:
    if pred.shape != target.shape or pred.ndim not in (4, 5):
        raise ValueError(
            f"{name}: pred and target must have the same shape (B, C, H, W) or (B, C, D, H, W), "
            f"got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    if pred.is_complex() or target.is_complex():
        raise TypeError(f"{name}: expects real images (take the magnitude first), got complex")


def _per_sample_range(data_range: Tensor | float, target: Tensor, name: str) -> Tensor:
    """``data_range`` as a ``(B, 1, ..., 1)`` tensor of ``target``'s dtype, device and ndim."""
    batch_size = target.shape[0]
    data_range = torch.as_tensor(data_range, dtype=target.dtype, device=target.device)
    if data_range.ndim == 0:
        data_range = data_range.expand(batch_size)
    if data_range.shape != (batch_size,):
        raise ValueError(
            f"{name}: data_range must be a float or a tensor of shape (B,) = ({batch_size},), "
            f"got shape {tuple(data_range.shape)}"
        )
    return data_range.reshape(batch_size, *(1,) * (target.ndim - 1))


def ssim_map(
    pred: Tensor,
    target: Tensor,
    data_range: Tensor | float,
    win_size: int = 7,
    k1: float = 0.01,
    k2: float = 0.03,
) -> Tensor:
    """Local SSIM ``(B, C, H - win_size + 1, W - win_size + 1)`` at every window inside the image;
    for volumes ``(B, C, D, H, W)``, ``(B, C, D - win_size + 1, ...)`` at every cubic window
    ``win_size^3`` inside the volume (DIRECT's ``SSIM3D``).

    With ``u``, ``v`` the uniform-window means and sample (co)variances (normalized by
    ``N / (N - 1)``, ``N = win_size^2``, or ``win_size^3`` for volumes), ``C1 = (k1 L)^2`` and
    ``C2 = (k2 L)^2`` for ``L = data_range``::

        S = (2 u_x u_y + C1)(2 v_xy + C2) / ((u_x^2 + u_y^2 + C1)(v_x + v_y + C2))

    the formula of skimage's ``structural_similarity`` (Wang et al., 2004, with a uniform window)
    and of fastMRI's ``SSIMLoss``. Channels are treated as separate images. Differentiable.
    """
    _check_pair(pred, target, "ssim")
    check_win_size(win_size, "ssim")
    spatial = target.shape[2:]
    if min(spatial) < win_size:
        window = "x".join([str(win_size)] * len(spatial))
        raise ValueError(
            f"ssim: images of shape {tuple(target.shape)} are smaller than the {window} window"
        )
    data_range = _per_sample_range(data_range, target, "ssim")
    # The local statistics cancel large terms (E[x^2] - E[x]^2): half precision, as produced by
    # autocast, ruins them, so SSIM is always computed in at least float32, autocast off.
    dtype = torch.promote_types(pred.dtype, torch.float32)
    pred, target, data_range = pred.to(dtype), target.to(dtype), data_range.to(dtype)
    with torch.autocast(device_type=pred.device.type, enabled=False):
        return _ssim_statistics(pred, target, data_range, win_size, k1, k2)


def _ssim_statistics(
    pred: Tensor, target: Tensor, data_range: Tensor, win_size: int, k1: float, k2: float
) -> Tensor:
    channels, ndim = target.shape[1], target.ndim - 2
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2

    num_pixels = win_size**ndim
    window = torch.full(
        (channels, 1, win_size, win_size), 1.0 / num_pixels, dtype=pred.dtype, device=pred.device
    )

    def local_mean(image: Tensor) -> Tensor:
        # Valid convolution: skimage filters the whole image, then crops (win_size - 1) // 2
        # pixels on each side before averaging, which leaves exactly these positions.
        if ndim == 2:
            return F.conv2d(image, window, groups=channels)
        # volumes: the uniform window is separable, three 1D means (21 instead of 343 products
        # per voxel; a dense 7x7x7 conv3d took seconds per validation batch of 64^3 patches)
        for axis in range(3):
            kernel = [1, 1, 1]
            kernel[axis] = win_size
            image = F.avg_pool3d(image.contiguous(), tuple(kernel), stride=1)
        return image

    cov_norm = num_pixels / (num_pixels - 1)
    ux, uy = local_mean(pred), local_mean(target)
    uxx, uyy, uxy = local_mean(pred * pred), local_mean(target * target), local_mean(pred * target)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)

    numerator = (2 * ux * uy + c1) * (2 * vxy + c2)
    denominator = (ux**2 + uy**2 + c1) * (vx + vy + c2)
    return numerator / denominator


def ssim(
    pred: Tensor,
    target: Tensor,
    data_range: Tensor | float,
    win_size: int = 7,
    k1: float = 0.01,
    k2: float = 0.03,
) -> Tensor:
    """Mean SSIM per sample, shape ``(B,)``: :func:`ssim_map` averaged over channels and positions.

    For float64 inputs this equals skimage's ``structural_similarity(target[b, c], pred[b, c],
    win_size=7, data_range=...)`` averaged over ``c`` to rounding; float32 agrees to ~1e-6.
    """
    similarity = ssim_map(pred, target, data_range, win_size, k1, k2)
    return similarity.flatten(1).mean(dim=1)


def psnr(pred: Tensor, target: Tensor, data_range: Tensor | float) -> Tensor:
    """Peak signal-to-noise ratio per sample in dB, ``10 log10(data_range^2 / mse)``, ``(B,)``.

    As skimage's ``peak_signal_noise_ratio`` (which fastMRI's ``evaluate.psnr`` calls); ``mse`` is
    the mean over ``(C, *spatial)``.
    """
    _check_pair(pred, target, "psnr")
    data_range = _per_sample_range(data_range, target, "psnr").reshape(-1)
    mse = (target - pred).pow(2).flatten(1).mean(dim=1)
    return 10 * torch.log10(data_range**2 / mse)


def nmse(pred: Tensor, target: Tensor) -> Tensor:
    """Normalized squared error per sample, ``||target - pred||^2 / ||target||^2``, ``(B,)``."""
    _check_pair(pred, target, "nmse")
    error = (target - pred).pow(2).flatten(1).sum(dim=1)
    return error / target.pow(2).flatten(1).sum(dim=1)


class _PerSampleMean(Metric):
    """Mean of a per-sample metric over every sample seen, on every process."""

    is_differentiable = False
    full_state_update = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # Default float dtype, not float64: MPS has no float64 and Lightning may pick MPS.
        self.add_state("total", default=torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def _accumulate(self, values: Tensor) -> None:
        values = values.detach()
        self.total += values.sum().to(self.total.dtype)
        self.count += values.numel()

    def compute(self) -> Tensor:
        return self.total / self.count


class SSIMMetric(_PerSampleMean):
    """Mean :func:`ssim` over samples. ``update(pred, target, data_range)``, images
    ``(B, C, H, W)`` or volumes ``(B, C, D, H, W)``, ``data_range`` a float or ``(B,)``."""

    higher_is_better = True

    def __init__(self, win_size: int = 7, k1: float = 0.01, k2: float = 0.03, **kwargs):
        super().__init__(**kwargs)
        check_win_size(win_size, type(self).__name__)
        self.win_size, self.k1, self.k2 = win_size, k1, k2

    def update(self, pred: Tensor, target: Tensor, data_range: Tensor | float) -> None:
        self._accumulate(ssim(pred, target, data_range, self.win_size, self.k1, self.k2))


class PSNRMetric(_PerSampleMean):
    """Mean :func:`psnr` over samples (dB). ``update(pred, target, data_range)``."""

    higher_is_better = True

    def update(self, pred: Tensor, target: Tensor, data_range: Tensor | float) -> None:
        self._accumulate(psnr(pred, target, data_range))


class NMSEMetric(_PerSampleMean):
    """Mean :func:`nmse` over samples. ``update(pred, target, data_range=None)``; ``data_range`` is
    accepted, and ignored, so that all three metrics share one call."""

    higher_is_better = False

    def update(
        self, pred: Tensor, target: Tensor, data_range: Tensor | float | None = None
    ) -> None:
        self._accumulate(nmse(pred, target))


class VolumeMetrics(Metric):
    """fastMRI's per-volume SSIM, PSNR and NMSE, averaged over volumes, the same under DDP as in
    one process.

    ``update(pred, target, max_value, volume_id, slice_num)`` records, per slice, its SSIM (the
    mean over window positions and channels), its squared error, the squared norm of its
    target and its pixel count. ``compute()`` then, per volume (all slices with one
    ``volume_id``), takes

    * SSIM: the mean of its slices' SSIM (fastMRI ``evaluate.ssim`` on the volume),
    * PSNR: ``10 log10(max^2 / MSE)``, ``MSE`` over all pixels of the volume and ``max`` its
      ``max_value`` (fastMRI's ``MriModule``; with one slice, ``evaluate.psnr``),
    * NMSE: ``||target - pred||^2 / ||target||^2`` over the volume (``evaluate.nmse``),

    and returns each metric's mean over volumes. Under DDP the per-slice records of all
    processes are gathered first, and a slice seen twice (the distributed sampler repeats a few
    items so that every process gets as many) counts once, so a volume whose slices were spread
    over several processes is evaluated exactly as in one process -- not an average of
    per-process averages. ``volume_id`` and ``slice_num`` are integer tensors ``(B,)``; when a
    batch has none, each sample is its own volume (unique per process, no deduplication).

    Samples may be whole volumes ``(B, C, D, H, W)`` (3D reconstruction): each is then one record,
    its SSIM the 3D SSIM of :func:`ssim` (a ``win_size^3`` window), its PSNR and NMSE over all
    its voxels.
    """

    is_differentiable = False
    higher_is_better = None
    full_state_update = False
    _RECORDS = ("volume", "slice", "ssim", "squared_error", "target_energy", "pixels", "max_value")

    def __init__(self, win_size: int = 7, k1: float = 0.01, k2: float = 0.03, **kwargs):
        super().__init__(**kwargs)
        check_win_size(win_size, type(self).__name__)
        self.win_size, self.k1, self.k2 = win_size, k1, k2
        for name in self._RECORDS:
            self.add_state(name, default=[], dist_reduce_fx="cat")
        self._anonymous = 0

    def update(
        self,
        pred: Tensor,
        target: Tensor,
        max_value: Tensor | float,
        volume_id: Tensor | None = None,
        slice_num: Tensor | None = None,
    ) -> None:
        _check_pair(pred, target, "VolumeMetrics")
        batch_size = target.shape[0]
        device = target.device
        if volume_id is None:
            # no identity: a unique negative id per sample on this process (rank in the low bits)
            rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
            start = self._anonymous
            self._anonymous += batch_size
            numbers = torch.arange(start, start + batch_size, device=device)
            volume_id = -(numbers * 4096 + rank + 1)
            slice_num = torch.zeros(batch_size, dtype=torch.long, device=device)
        elif slice_num is None:
            raise ValueError("VolumeMetrics.update: volume_id given without slice_num")
        pred, target = pred.detach().double(), target.detach().double()
        max_value = _per_sample_range(max_value, target, "VolumeMetrics").reshape(-1)
        records = {
            "volume": torch.as_tensor(volume_id, device=device).reshape(batch_size).long(),
            "slice": torch.as_tensor(slice_num, device=device).reshape(batch_size).long(),
            "ssim": ssim(pred, target, max_value, self.win_size, self.k1, self.k2),
            "squared_error": (target - pred).pow(2).flatten(1).sum(dim=1),
            "target_energy": target.pow(2).flatten(1).sum(dim=1),
            "pixels": torch.full((batch_size,), target[0].numel(), device=device).double(),
            "max_value": max_value,
        }
        for name, values in records.items():
            getattr(self, name).append(values)

    def _records(self) -> dict[str, Tensor]:
        """Every slice seen once, sorted by ``(volume, slice)``, as float64/int64 tensors."""
        records = {}
        for name in self._RECORDS:
            value = getattr(self, name)
            if isinstance(value, list):
                value = torch.cat(value) if value else torch.zeros(0, dtype=torch.float64)
            records[name] = value.cpu()
        if records["volume"].numel() == 0:
            return records
        keys = torch.stack([records["volume"].long(), records["slice"].long()], dim=1)
        unique, inverse = torch.unique(keys, dim=0, return_inverse=True)
        first = torch.full((len(unique),), len(keys), dtype=torch.long)
        first.scatter_reduce_(0, inverse, torch.arange(len(keys)), reduce="amin")
        return {name: values[first] for name, values in records.items()}

    def per_volume(self) -> dict[int, dict[str, float]]:
        """``{volume_id: {"ssim", "psnr", "nmse", "slices"}}`` over everything seen."""
        records = self._records()
        results = {}
        for volume in records["volume"].unique().tolist():
            rows = records["volume"] == volume
            mse = records["squared_error"][rows].sum() / records["pixels"][rows].sum()
            max_value = records["max_value"][rows].max()
            results[int(volume)] = {
                "ssim": float(records["ssim"][rows].double().mean()),
                "psnr": float(10 * torch.log10(max_value**2 / mse)),
                "nmse": float(
                    records["squared_error"][rows].sum() / records["target_energy"][rows].sum()
                ),
                "slices": int(rows.sum()),
            }
        return results

    def compute(self) -> dict[str, Tensor]:
        volumes = self.per_volume()
        if not volumes:
            raise RuntimeError("VolumeMetrics.compute: no slice was recorded")
        return {
            name: torch.tensor(
                sum(v[name] for v in volumes.values()) / len(volumes), dtype=torch.float64
            )
            for name in ("ssim", "psnr", "nmse")
        }
