"""A Recon followed by an image-domain network: the SNU fastMRI challenge design, an E2E-VarNet
whose output an RCAN refines, with the first stage optionally pretrained and frozen."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from deepinv_lab.recons.base import Recon, load_state_checked
from deepinv_lab.systems.base import System


def load_recon_weights(recon: nn.Module, checkpoint_path: str | Path, owner: str) -> None:
    """Load ``recon``'s weights from a training checkpoint (a Lightning ``.ckpt`` whose
    ``state_dict`` holds ``recon.*``, or a plain state dict of the Recon itself).

    The error names the file and the keys or shapes that do not match.
    """
    path = Path(checkpoint_path)
    if not path.is_file():
        raise FileNotFoundError(f"{owner}: checkpoint {str(path)!r} does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # noqa: BLE001 - any unreadable file gets the same message
        raise ValueError(f"{owner}: cannot read checkpoint {str(path)!r}: {error}") from None
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"{owner}: {str(path)!r} holds no state dict")
    if any(key.startswith("recon.") for key in state):
        state = {k[len("recon.") :]: v for k, v in state.items() if k.startswith("recon.")}
    load_state_checked(recon, state, f"{owner}: checkpoint {str(path)!r}")


class Refinement(Recon):
    """``x_hat = x_1 + R(x_1)`` with ``x_1 = recon(y, A)``: a Recon (e.g. ``VarNet``) followed by
    an image-domain network ``R`` (e.g. RCAN with ``scale=1``).

    Args:
        recon: the first stage.
        model: the refinement network on ``x_1`` ``(B, C, H, W) -> (B, C, H, W)``.
        residual: add ``x_1`` to the network's output.
        freeze_recon: do not train the first stage (its parameters get ``requires_grad=False``,
            it runs without recording a graph and stays in eval mode), as in the two-stage
            training of the SNU fastMRI challenge entry.
        recon_checkpoint: load the first stage's weights from a checkpoint of a previous run
            (e.g. ``logs/varnet/version_0/checkpoints/last.ckpt`` from ``configs/varnet.json``).

    Shapes: those of ``recon``; for VarNet ``(B, coils, H, W)`` k-space -> ``(B, 1, H, W)``.
    """

    def __init__(
        self,
        recon: Recon,
        model: nn.Module,
        residual: bool = True,
        freeze_recon: bool = False,
        recon_checkpoint: str | None = None,
    ):
        super().__init__()
        self.recon = recon
        self.model = model
        self.residual = residual
        self.freeze_recon = freeze_recon
        if recon_checkpoint is not None:
            load_recon_weights(recon, recon_checkpoint, type(self).__name__)
        if freeze_recon:
            recon.requires_grad_(False)
            recon.eval()

    def train(self, mode: bool = True) -> Refinement:
        super().train(mode)
        if self.freeze_recon:
            self.recon.eval()
        return self

    def forward(self, y: torch.Tensor, system: System) -> torch.Tensor:
        if self.freeze_recon:
            with torch.no_grad():
                first = self.recon(y, system)
        else:
            first = self.recon(y, system)
        out = self.model(first)
        return first + out if self.residual else out

    def diagnostics(self) -> dict[str, float]:
        return self.recon.diagnostics() if isinstance(self.recon, Recon) else {}
