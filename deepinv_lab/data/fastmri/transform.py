"""One raw fastMRI slice to item tensors: masked k-space, mask and target, as fastMRI's
``VarNetDataTransform``."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from deepinv_lab.data.fastmri.layout import FastMRIDataError
from deepinv_lab.data.fastmri.volumes import VolumeInfo
from deepinv_lab.functional import center_crop
from deepinv_lab.systems.sampling import to_column_mask


class FastMRISliceTransform:
    """Raw slice -> item tensors, as fastMRI's ``VarNetDataTransform``.

    Args:
        mask_func: a column mask function of :mod:`deepinv_lab.systems.sampling`.
        crop_size: center-crop the target to ``(h, w)``; None keeps the stored target
            (``(rh, rw)``, the reconstruction matrix of the header).

    ``__call__`` returns ``y`` (masked k-space ``(coils, H, W)`` complex64, ``(1, H, W)`` for
    singlecoil), ``mask`` ``(1, 1, W)`` float32 with the unacquired columns zeroed,
    ``num_low_frequencies`` and, when a target is given, ``target`` ``(1, h, w)`` float32.
    """

    def __init__(self, mask_func: Callable, crop_size: Sequence[int] | None = None):
        self.mask_func = mask_func
        self.crop_size = None if crop_size is None else tuple(int(n) for n in crop_size)

    def __call__(
        self,
        kspace: np.ndarray,
        target: np.ndarray | None,
        stored_mask: np.ndarray | None,
        info: VolumeInfo,
        mask_seed: int | tuple[int, ...],
    ) -> dict[str, torch.Tensor]:
        kspace_t = torch.from_numpy(np.ascontiguousarray(kspace)).to(torch.complex64)
        if kspace_t.ndim == 2:  # singlecoil (H, W) -> (1, H, W)
            kspace_t = kspace_t[None]
        height, width = kspace_t.shape[-2:]
        if stored_mask is not None:  # test-set file: k-space already undersampled with it
            mask = torch.from_numpy(np.asarray(stored_mask, dtype=np.float32).reshape(1, 1, -1))
            num_low_frequencies = int(info.attrs.get("num_low_frequency", 0))
        else:
            mask, num_low_frequencies = self.mask_func((1, height, width, 2), seed=mask_seed)
            mask = to_column_mask(mask).clone()
        if mask.shape[-1] != width:
            raise FastMRIDataError(
                f"{info.path}: mask of {mask.shape[-1]} columns for k-space of {width} columns"
            )
        # fastMRI zeroes the mask outside the acquired phase encodes (clamped to [0, W]).
        mask[..., : max(info.padding_left, 0)] = 0
        mask[..., max(min(info.padding_right, width), 0) :] = 0
        item = {
            "y": kspace_t * mask + 0.0,  # + 0.0: no negative zeros, as fastMRI's apply_mask
            "mask": mask,
            "num_low_frequencies": torch.tensor(num_low_frequencies),
        }
        if target is not None:
            target_t = torch.from_numpy(np.asarray(target, dtype=np.float32))[None]
            if self.crop_size is not None:
                target_t = center_crop(target_t, self.crop_size)
            item["target"] = target_t
        return item
