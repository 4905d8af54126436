"""A denoiser trained by ``deepinv-lab fit``, rebuilt from its checkpoint alone: the prior that
plug-and-play and RED reuse on other inverse problems, with no retraining."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import torch
from torch import nn

from deepinv_lab.checkpoints import load_recon_weights
from deepinv_lab.checkpoints.config import stored_model_config
from deepinv_lab.checkpoints.reading import read_checkpoint
from deepinv_lab.errors import UserError
from deepinv_lab.recons.base import Recon, require_image
from deepinv_lab.recons.image import Denoiser
from deepinv_lab.systems.base import System


def recon_from_checkpoint(path: str | Path, option: str) -> Recon:
    """The Recon that the ``fit`` (or ``prune``) checkpoint ``path`` was trained as: built from
    the config stored in the checkpoint (its ``model.init_args.recon``), resized to a pruned
    architecture if the checkpoint has one, with the checkpoint's weights loaded.

    ``option`` names what gave the path; every UserError starts with it and names the file."""
    from jsonargparse import ArgumentParser

    checkpoint = read_checkpoint(path, option)
    model = stored_model_config(checkpoint)
    recon_config: Any = None
    if isinstance(model, dict) and isinstance(model.get("init_args"), dict):
        recon_config = model["init_args"].get("recon")
    if not isinstance(recon_config, dict) or "class_path" not in recon_config:
        raise UserError(
            f"{option}: {path}: the checkpoint does not say which Recon it holds (no stored "
            "config with model.init_args.recon); use a checkpoint written by deepinv-lab fit"
        )
    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--recon", type=Recon)
    # jsonargparse >= 4.49 renamed instantiate_classes
    instantiate = getattr(parser, "instantiate", None) or parser.instantiate_classes
    try:
        recon = instantiate(parser.parse_object({"recon": recon_config})).recon
    except Exception as error:  # noqa: BLE001 - the stored config no longer builds: say so
        reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise UserError(
            f"{option}: {path}: its stored Recon {recon_config['class_path']} cannot be built "
            f"here: {reason[:300]}"
        ) from None
    load_recon_weights(recon, path, option, checkpoint)
    return recon


def accepts_noise_level(model: nn.Module) -> bool:
    """Whether ``model(x, sigma=...)`` is accepted: its ``forward`` has a ``sigma`` parameter
    (a noise-level-conditioned denoiser, told the level per sample as a ``(B,)`` tensor)."""
    try:
        parameters = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False
    return "sigma" in parameters


class TrainedDenoiser(Recon):
    """The denoiser of a ``deepinv-lab fit`` checkpoint of a denoising config (e.g.
    ``configs/bfcnn_mohan.json``), architecture and weights taken from the checkpoint alone;
    pruned checkpoints (``deepinv-lab prune``) included. Frozen: ``fit`` never trains it.

    Use it as the ``denoiser`` of :class:`~deepinv_lab.recons.PlugAndPlay` or
    :class:`~deepinv_lab.recons.RED`, or as a Recon of its own, to evaluate the trained denoiser
    on other denoising data (another noise level, other images).

    Args:
        checkpoint: the ``.ckpt`` file, e.g.
            ``logs/bfcnn_mohan/version_0/checkpoints/last.ckpt``. Its Recon must be a
            :class:`~deepinv_lab.recons.Denoiser` (or a subclass).

    ``forward(x, system=None, sigma=None)``: ``x`` real ``(B, C, H, W)``; ``sigma`` ``(B,)``, the
    noise level, reaches the network when its ``forward`` takes a ``sigma`` argument and is
    ignored otherwise (blind denoisers, e.g. bias-free DnCNN). The loaded Recon's residual
    option is kept.
    """

    def __init__(self, checkpoint: str):
        super().__init__()
        recon = recon_from_checkpoint(checkpoint, f"{type(self).__name__} checkpoint")
        if not isinstance(recon, Denoiser):
            raise UserError(
                f"{type(self).__name__} checkpoint: {checkpoint}: it holds a "
                f"{type(recon).__name__} Recon, not a Denoiser; give a checkpoint of a denoising "
                "config (e.g. configs/bfcnn_mohan.json)"
            )
        self.checkpoint = str(checkpoint)
        self.denoiser = recon
        self.denoiser.requires_grad_(False)
        self.denoiser.eval()
        self.told_noise_level = accepts_noise_level(recon.model)

    def train(self, mode: bool = True) -> TrainedDenoiser:
        super().train(mode)
        self.denoiser.eval()  # frozen: batch norm keeps its running statistics
        return self

    def check_system(self, system: System, y: torch.Tensor) -> None:
        require_image(self, system, y)

    def forward(
        self, x: torch.Tensor, system: System | None = None, sigma: torch.Tensor | None = None
    ) -> torch.Tensor:
        if self.told_noise_level and sigma is not None:
            out = self.denoiser.model(x, sigma=sigma)
            return x + out if self.denoiser.residual else out
        return self.denoiser(x)
