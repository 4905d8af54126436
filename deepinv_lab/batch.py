"""The batch contract between the data (producers) and the training modules (consumers).

Every DataModule's ``collate_fn`` returns a :class:`Batch`; :class:`~deepinv_lab.training.module.
ReconModule` checks it once per step with :func:`check_batch` and reconstructs it with
``ReconModule.reconstruct(batch)``. Side information a Recon may need about the acquisition (the
sampling mask, coil maps, the ACS width ``num_low_frequencies``) travels *on the System*, not as
loose batch keys, so every Recon has the one signature ``recon(y, system)``.

Plain torch only: data and training both import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

import torch

from deepinv_lab.errors import UserError
from deepinv_lab.systems.base import System

try:  # Python >= 3.11
    from typing import Required
except ImportError:  # pragma: no cover - Python 3.10
    from typing_extensions import Required


class Batch(TypedDict, total=False):
    """What a batch carries. ``B`` is the batch size.

    Required:
        y: the measurements, ``(B, ...)``: masked multicoil k-space ``(B, coils, H, W)``
            complex, a noisy or low-resolution image ``(B, C, h, w)``, ...
        system: the :class:`~deepinv_lab.systems.base.System` ``A`` that produced ``y``, with
            its per-sample parameters (masks, coil maps, noise levels, the ACS width) as
            buffers, so Lightning moves it to the device with the tensors.

    Needed to train, validate and test (data without references, e.g. fastMRI test files, may
    only be predicted):
        target: the ground truth ``(B, C, H, W)``; Recon outputs are center-cropped to its size.
        max_value: ``(B,)`` the SSIM/PSNR data range of each sample (its volume's maximum).

    Optional:
        volume_id: ``(B,)`` integer id of each sample's volume; metrics are per volume, as
            fastMRI's (each sample is its own volume when absent).
        slice_num: ``(B,)`` the slice index within the volume (needed with ``volume_id``).
        fname: ``B`` file names, for the per-volume results table.
        crop_size: ``(B, 2)`` the reconstruction size of data without ``target``.

    Datasets may add keys of their own (fastMRI items keep ``mask``, for instance); the training
    modules read only these.
    """

    y: Required[torch.Tensor]
    system: Required[System]
    target: torch.Tensor
    max_value: torch.Tensor
    volume_id: torch.Tensor
    slice_num: torch.Tensor
    fname: list[str]
    crop_size: torch.Tensor


def check_batch(batch: Any, stage: str) -> Batch:
    """``batch`` unchanged if it satisfies the contract of :class:`Batch`; otherwise a
    :class:`~deepinv_lab.errors.UserError` naming the key and the shapes (batches come from the
    user's data and ``collate_fn``).

    ``stage`` (``"training"``, ``"validation"``, ...) prefixes the messages.
    """
    if not isinstance(batch, Mapping):
        raise UserError(
            f"{stage}: a batch must be a dict with 'y' and 'system' (see deepinv_lab.batch.Batch),"
            f" got {type(batch).__name__}; check the DataModule's collate_fn"
        )
    missing = [key for key in ("y", "system") if key not in batch]
    if missing:
        raise UserError(
            f"{stage}: the batch has no {' and no '.join(map(repr, missing))} (keys: "
            f"{sorted(batch)}); a batch carries the measurements 'y' and the System 'system' "
            "that produced them (see deepinv_lab.batch.Batch)"
        )
    y, system = batch["y"], batch["system"]
    if not isinstance(y, torch.Tensor) or y.ndim < 1:
        raise UserError(f"{stage}: batch 'y' must be a tensor (B, ...), got {_describe(y)}")
    if not isinstance(system, System):
        raise UserError(
            f"{stage}: batch 'system' must be a deepinv_lab System, got {type(system).__name__}"
        )
    size = y.shape[0]
    target = batch.get("target")
    if target is not None and (
        not isinstance(target, torch.Tensor) or target.ndim < 3 or target.shape[0] != size
    ):
        raise UserError(
            f"{stage}: batch 'target' must be a tensor ({size}, C, H, W) for 'y' of shape "
            f"{tuple(y.shape)}, got {_describe(target)}"
        )
    if target is not None and "max_value" not in batch:
        raise UserError(
            f"{stage}: the batch has a 'target' but no 'max_value' ({size},), the data range "
            "of SSIM and PSNR"
        )
    for key in ("max_value", "volume_id", "slice_num"):
        value = batch.get(key)
        if value is not None and (
            not isinstance(value, torch.Tensor) or tuple(value.shape) not in ((size,), ())
        ):
            raise UserError(
                f"{stage}: batch '{key}' must be a tensor of shape ({size},), one per sample of "
                f"'y' {tuple(y.shape)}, got {_describe(value)}"
            )
    if "volume_id" in batch and "slice_num" not in batch:
        raise UserError(f"{stage}: batch 'volume_id' needs 'slice_num' beside it")
    fname = batch.get("fname")
    if fname is not None and len(fname) != size:
        raise UserError(
            f"{stage}: batch 'fname' must name the {size} samples of 'y', got {len(fname)} names"
        )
    crop_size = batch.get("crop_size")
    if crop_size is not None and (
        not isinstance(crop_size, torch.Tensor) or tuple(crop_size.shape) != (size, 2)
    ):
        raise UserError(
            f"{stage}: batch 'crop_size' must be a tensor of shape ({size}, 2), got "
            f"{_describe(crop_size)}"
        )
    return batch  # type: ignore[return-value]


def require_target(batch: Batch, stage: str) -> None:
    """A UserError when ``batch`` breaks the contract (:func:`check_batch`) or has no target:
    data without references cannot be scored."""
    check_batch(batch, stage)
    if "target" not in batch:
        raise UserError(
            f"{stage}: the batches have no 'target' (e.g. fastMRI test or challenge files, which "
            "have no reconstructions): there is nothing to compare with; use `deepinv-lab "
            "predict` to reconstruct them"
        )


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return type(value).__name__
