"""Batching fastMRI items: stack them and add the batch's System (mask and Fourier transform)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch.utils.data import default_collate

from deepinv_lab.data.fastmri.layout import CHALLENGES
from deepinv_lab.errors import UserError
from deepinv_lab.systems.mri import (
    MaskedComposition,
    MultiCoilFourier,
    MultiCoilMRI,
    SingleCoilMRI,
)


def collate_fastmri(samples: Sequence[dict], challenge: str | None = None) -> dict[str, Any]:
    """Stack fastMRI items (strings become lists) and add ``"system"``.

    The System is :class:`~deepinv_lab.systems.mri.MultiCoilMRI` of the items' ``coil_maps`` and
    masks when the items carry estimated maps, else
    :class:`~deepinv_lab.systems.mri.MultiCoilFourier` of the masks ``(B, 1, 1, W)`` for
    multicoil data and :class:`~deepinv_lab.systems.mri.SingleCoilMRI` for
    singlecoil; ``challenge`` None infers it from the coil count (1: singlecoil; both Systems
    are the same operator then). The items' ACS widths ``num_low_frequencies`` go onto the
    System, where VarNet reads them (0, a file without one, lets VarNet derive it from the mask).

    Raises:
        ValueError: items of different shapes, naming them (batch by
            :meth:`~deepinv_lab.data.fastmri.dataset.FastMRISliceDataset.bucket_keys` to avoid
            it).
    """
    if challenge is not None and challenge not in CHALLENGES:
        raise UserError(f"challenge must be one of {CHALLENGES}, got {challenge!r}")
    for key in ("y", "target"):
        shapes = {tuple(s[key].shape) for s in samples if key in s}
        if len(shapes) > 1:
            raise ValueError(
                f"collate_fastmri: the items of one batch must share the {key!r} shape, got "
                f"{sorted(shapes)}; use batch_size 1 or a bucketing sampler "
                "(FastMRISliceDataset.bucket_keys)"
            )
    batch = default_collate(list(samples))
    if challenge is None:
        challenge = "singlecoil" if batch["y"].shape[1] == 1 else "multicoil"
    batch["system"] = fastmri_system(batch, challenge)
    return batch


def fastmri_system(batch: dict[str, Any], challenge: str = "multicoil") -> MaskedComposition:
    """The System of a fastMRI batch: ``MultiCoilMRI`` with its ``coil_maps`` when it has them,
    else the coil-by-coil ``MultiCoilFourier`` (``SingleCoilMRI`` for singlecoil data)."""
    widths = batch.get("num_low_frequencies")
    if "coil_maps" in batch:
        return MultiCoilMRI(batch["coil_maps"], batch["mask"], widths)
    system = MultiCoilFourier if challenge == "multicoil" else SingleCoilMRI
    return system(batch["mask"], widths)
