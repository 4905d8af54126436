"""Batching: stack the items' tensors and assemble the batch's System from them.

The System travels with the batch (docs/conventions.md, "Batches"): ``batch["system"]`` is a
:class:`~deepinv_lab.systems.mri.MultiCoilMRI` holding the per-sample masks and coil maps as
buffers, so Lightning moves it to the device with the tensors.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import default_collate

from deepinv_lab.systems.mri import MultiCoilMRI


def collate_multicoil(samples: Sequence[dict]) -> dict:
    """Stack a list of multicoil items; adds ``"system"`` (a batched ``MultiCoilMRI`` with the
    items' masks, coil maps and, when they give it, ACS width ``num_low_frequencies``).

    Items with different k-space shapes cannot share a batch: the error names the shapes.
    """
    shapes = {tuple(sample["y"].shape) for sample in samples}
    if len(shapes) > 1:
        raise ValueError(
            "collate_multicoil: items of one batch must share a k-space shape, got "
            f"{sorted(shapes)}; use batch_size 1"
        )
    batch = default_collate(list(samples))
    batch["system"] = MultiCoilMRI(
        batch["coil_maps"], batch["mask"], batch.get("num_low_frequencies")
    )
    return batch


def batch_to_device(batch: dict, device: torch.device) -> dict:
    """Move every tensor and System of a batch to ``device`` (for use outside Lightning)."""
    return {
        key: value.to(device) if hasattr(value, "to") else value for key, value in batch.items()
    }
