"""A Recon followed by an image-domain network: the SNU fastMRI challenge design, an E2E-VarNet
whose output an RCAN refines, with the first stage optionally pretrained and frozen."""

from __future__ import annotations

import torch
from torch import nn

from deepinv_lab.checkpoints import load_recon_weights
from deepinv_lab.recons.base import Recon
from deepinv_lab.systems.base import System


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
            (e.g. ``logs/varnet/version_0/checkpoints/last.ckpt`` from ``configs/varnet.json``);
            a pruned checkpoint (``deepinv-lab prune``) resizes the first stage to its
            architecture.

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
            load_recon_weights(recon, recon_checkpoint, f"{type(self).__name__} recon_checkpoint")
        if freeze_recon:
            recon.requires_grad_(False)
            recon.eval()

    def train(self, mode: bool = True) -> Refinement:
        super().train(mode)
        if self.freeze_recon:
            self.recon.eval()
        return self

    def check_system(self, system: System, y: torch.Tensor) -> None:
        self.recon.check_system(system, y)

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
