"""Reconstructing raw k-space volumes (:class:`~deepinv_lab.io.raw.RawVolume`) slice by slice,
in batches, with the System a fastMRI batch of the same data would carry."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from deepinv_lab.data.physics.draws import EspiritEstimate
from deepinv_lab.errors import UserError
from deepinv_lab.functional import center_crop
from deepinv_lab.io.raw import RawVolume
from deepinv_lab.recons.base import Recon
from deepinv_lab.systems.mri import MaskedComposition, MultiCoilFourier, MultiCoilMRI, SingleCoilMRI


def raw_system(
    y: torch.Tensor,
    volume: RawVolume,
    maps: EspiritEstimate | None,
) -> MaskedComposition:
    """The System of the slices ``y`` ``(B, C, H, W)`` of ``volume``: its column mask and ACS
    width, with coil maps estimated by ``maps`` (``MultiCoilMRI``) or without
    (``MultiCoilFourier``; ``SingleCoilMRI`` for one coil), as
    :func:`~deepinv_lab.data.fastmri.collate.fastmri_system` builds it for fastMRI batches."""
    batch = y.shape[0]
    mask = torch.from_numpy(np.asarray(volume.mask, dtype=np.float32)).to(y.device)
    mask = mask.reshape(1, 1, 1, -1).expand(batch, 1, 1, -1).contiguous()
    widths = torch.full((batch,), int(volume.num_low_frequencies), device=y.device)
    if maps is not None and y.shape[1] > 1:
        coil_maps = maps(y.cpu(), widths.cpu()).to(y.device)
        return MultiCoilMRI(coil_maps, mask, widths)
    system = SingleCoilMRI if y.shape[1] == 1 else MultiCoilFourier
    return system(mask, widths)


def output_size(volume: RawVolume, shape: tuple[int, int]) -> tuple[int, int]:
    """The size reconstructions of ``volume`` are centre-cropped to: its reconstruction matrix
    within the image ``shape`` (fastMRI's crop)."""
    return min(volume.recon_size[0], shape[0]), min(volume.recon_size[1], shape[1])


@torch.no_grad()
def reconstruct_raw(
    recon: Recon,
    volume: RawVolume,
    device: torch.device,
    batch_size: int,
    maps: EspiritEstimate | None = None,
    on_batch: Callable[[int], None] | None = None,
    describe: str = "",
) -> np.ndarray:
    """The magnitude images ``(S, h, w)`` float32 of every slice of ``volume``, cropped to its
    reconstruction matrix.

    Args:
        recon: the Recon (eval mode, on ``device``).
        volume: the raw k-space.
        device: where the slices are reconstructed.
        batch_size: slices per forward pass.
        maps: coil maps estimated per batch when the Recon needs them (None: none).
        on_batch: called with the number of slices done after each batch (a progress bar).
        describe: what the errors name (the checkpoint and the file).

    Raises:
        UserError: the Recon cannot reconstruct this k-space (its ``check_system`` says why).
    """
    slices = []
    for start in range(0, volume.num_slices, batch_size):
        chunk = volume.kspace[start : start + batch_size]
        y = torch.from_numpy(np.ascontiguousarray(chunk)).to(device, torch.complex64)
        system = raw_system(y, volume, maps).to(device)
        if start == 0:
            try:
                recon.check_system(system, y)
            except UserError as error:
                raise UserError(f"{describe}: {error}") from None
        output = recon(y, system)
        if output.is_complex():
            output = output.abs()
        output = center_crop(output, output_size(volume, tuple(output.shape[-2:])))
        slices.append(output.reshape(-1, *output.shape[-2:]).float().cpu().numpy())
        if on_batch is not None:
            on_batch(y.shape[0])
    return np.concatenate(slices, axis=0)
