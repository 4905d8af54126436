"""A Recon followed by an image-domain network: the SNU fastMRI challenge design, an E2E-VarNet
whose output (with a GRAPPA image beside it) an RCAN refines, with the first stage optionally
pretrained and frozen, and a geometric self-ensemble of the network at test time."""

from __future__ import annotations

import torch
from torch import nn

from deepinv_lab.checkpoints import load_recon_weights
from deepinv_lab.errors import UserError
from deepinv_lab.models.wrappers import check_self_ensemble_mode, self_ensemble
from deepinv_lab.recons.base import Recon
from deepinv_lab.systems.base import System


class Refinement(Recon):
    """``x_hat = x_1 + R([x_1, e_1, ..., e_n])`` with ``x_1 = recon(y, A)`` and ``e_i =
    extra_inputs[i](y, A)``: a Recon (e.g. ``VarNet``) followed by an image-domain network ``R``
    (e.g. RCAN with ``scale=1``) that sees the first stage's image and, as further channels, the
    images of classical Recons (e.g. ``GrappaRecon``: the SNU entry's VarNet + GRAPPA input).

    Args:
        recon: the first stage.
        model: the refinement network ``(B, C (1 + n), H, W) -> (B, C, H, W)``.
        extra_inputs: untrained Recons whose images are stacked after ``x_1`` as the network's
            further input channels (computed without gradients); they must give ``x_1``'s shape.
        residual: add ``x_1`` to the network's output.
        freeze_recon: do not train the first stage (its parameters get ``requires_grad=False``,
            it runs without recording a graph and stays in eval mode), as in the two-stage
            training of the SNU fastMRI challenge entry.
        recon_checkpoint: load the first stage's weights from a checkpoint of a previous run
            (e.g. ``logs/varnet/version_0/checkpoints/last.ckpt`` from ``configs/varnet.json``);
            a pruned checkpoint (``deepinv-lab prune``) resizes the first stage to its
            architecture.
        self_ensemble: ``"x8"`` (or ``"x2"``) averages the network, outside training, over the 8
            flips/rotations of its input images (transformed back): the challenge entry's
            test-time ensemble. Only the image-domain network is ensembled, since the k-space
            System does not rotate with the image.

    Shapes: those of ``recon``; for VarNet ``(B, coils, H, W)`` k-space -> ``(B, 1, H, W)``.
    """

    def __init__(
        self,
        recon: Recon,
        model: nn.Module,
        extra_inputs: list[Recon] | None = None,
        residual: bool = True,
        freeze_recon: bool = False,
        recon_checkpoint: str | None = None,
        self_ensemble: str | None = None,
    ):
        super().__init__()
        if self_ensemble is not None:
            check_self_ensemble_mode(self_ensemble, type(self).__name__, "self_ensemble")
        extra_inputs = list(extra_inputs or [])
        for extra in extra_inputs:
            if not isinstance(extra, Recon):
                raise UserError(
                    f"{type(self).__name__}: extra_inputs must be Recons (e.g. GrappaRecon), got "
                    f"{type(extra).__name__}"
                )
        self.recon = recon
        self.model = model
        self.extra_inputs = nn.ModuleList(extra_inputs)
        self.self_ensemble = self_ensemble
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
        for extra in self.extra_inputs:
            extra.check_system(system, y)

    def forward(self, y: torch.Tensor, system: System) -> torch.Tensor:
        if self.freeze_recon:
            with torch.no_grad():
                first = self.recon(y, system)
        else:
            first = self.recon(y, system)
        inputs = first
        if len(self.extra_inputs):
            with torch.no_grad():
                extras = [extra(y, system) for extra in self.extra_inputs]
            for extra, image in zip(self.extra_inputs, extras, strict=True):
                if image.shape != first.shape:
                    raise ValueError(
                        f"{type(self).__name__}: extra input {type(extra).__name__} gives shape "
                        f"{tuple(image.shape)}, the first stage {tuple(first.shape)}"
                    )
            inputs = torch.cat([first, *extras], dim=1)
        if self.self_ensemble is not None and not self.training:
            out = self_ensemble(self.model, inputs, mode=self.self_ensemble)
        else:
            out = self.model(inputs)
        return first + out if self.residual else out

    def diagnostics(self) -> dict[str, float]:
        return self.recon.diagnostics() if isinstance(self.recon, Recon) else {}
