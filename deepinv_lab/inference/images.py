"""Reconstructing images and volumes (denoising, super-resolution) with an image Recon."""

from __future__ import annotations

import numpy as np
import torch

from deepinv_lab.errors import UserError
from deepinv_lab.recons.base import Recon
from deepinv_lab.systems.base import System
from deepinv_lab.training.module import PatchInference


@torch.no_grad()
def reconstruct_image(
    recon: Recon,
    image: np.ndarray,
    system: System,
    device: torch.device,
    patch_inference: PatchInference | None = None,
    describe: str = "",
) -> np.ndarray:
    """``recon(image, system)`` of one image ``(C, H, W)`` or volume ``(C, D, H, W)``, float32
    of the same layout (the Recon's channels and size).

    ``patch_inference`` (the checkpoint's) reconstructs by overlapping patches when the image
    exceeds its budget, as ``deepinv-lab predict`` does.

    Raises:
        UserError: the Recon cannot reconstruct this image (``check_system``), or its size does
            not suit the System (e.g. a super-resolution factor), naming ``describe``.
    """
    y = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None].to(device)
    try:
        recon.check_system(system, y)
    except UserError as error:
        raise UserError(f"{describe}: {error}") from None
    if patch_inference is not None:
        output = patch_inference.reconstruct(recon, y, system)
    else:
        output = recon(y, system)
    return output[0].float().cpu().numpy()
