"""ReconModule: the LightningModule that trains, validates and tests any Recon."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn

from deepinv_lab.functional import center_crop
from deepinv_lab.recons.base import Recon
from deepinv_lab.recons.zero_filled import ZeroFilled
from deepinv_lab.training.losses import make_loss
from deepinv_lab.training.metrics import NMSEMetric, PSNRMetric, SSIMMetric


def _built_from_config() -> bool:
    """True while LightningCLI instantiates the module (it then provides the hyperparameters)."""
    try:
        from pytorch_lightning.core.mixins.hparams_mixin import _given_hyperparameters
    except ImportError:  # a Lightning without config-given hyperparameters
        return False
    return _given_hyperparameters.get() is not None


class ReconModule(pl.LightningModule):
    """Trains a :class:`~deepinv_lab.recons.base.Recon` on batches that carry their System.

    A batch is a dict with ``kspace`` (measurements ``y``), ``system`` (the System ``A``),
    ``target`` ``(B, 1, H, W)`` and ``max_value`` ``(B,)`` (fastMRI's SSIM data range).
    The Recon's output is center-cropped to the target's size, as fastMRI does.

    Args:
        recon: the reconstruction network, e.g. ``VarNet``.
        loss: ``"ssim"`` (1 - SSIM, fastMRI's VarNet loss), ``"l1"``, ``"mse"``, or any
            ``nn.Module`` called as ``loss(output, target, max_value)``.
        optimizer: optimizer factory, called with the parameters (a ``class_path`` in configs).
        lr_scheduler: optional scheduler factory, called with the optimizer; stepped every epoch.

    Logged: ``train/loss``; ``val/loss``, ``val/ssim``, ``val/psnr``, ``val/nmse`` and the same
    metrics of the zero-filled baseline as ``val/zero_filled_*``; ``test/*`` likewise.
    """

    def __init__(
        self,
        recon: Recon,
        loss: str | nn.Module = "ssim",
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
    ):
        super().__init__()
        if _built_from_config():
            # LightningCLI hands over the config of every argument (class paths included):
            # saving all of it lets a checkpoint rebuild its Recon without the original config.
            self.save_hyperparameters()
        else:
            self.save_hyperparameters(ignore=["recon", "loss", "optimizer", "lr_scheduler"])
        self.recon = recon
        self.loss_fn = make_loss(loss)
        self.optimizer_factory = optimizer
        self.scheduler_factory = lr_scheduler
        self.baseline = ZeroFilled()
        metric_sets = {}
        for stage in ("val", "test"):
            for prefix in ("", "zero_filled_"):
                metric_sets[f"{stage}_{prefix}"] = nn.ModuleDict(
                    {"ssim": SSIMMetric(), "psnr": PSNRMetric(), "nmse": NMSEMetric()}
                )
        self.metrics = nn.ModuleDict(metric_sets)

    def forward(self, y: torch.Tensor, system: nn.Module) -> torch.Tensor:
        return self.recon(y, system)

    def _reconstruct(self, batch: dict) -> torch.Tensor:
        output = self.recon(batch["kspace"], batch["system"])
        target = batch["target"]
        if output.shape[-2:] != target.shape[-2:]:
            output = center_crop(output, target.shape[-2:])
        return output

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        output = self._reconstruct(batch)
        loss = self.loss_fn(output, batch["target"], batch["max_value"])
        self.log("train/loss", loss, prog_bar=True, batch_size=output.shape[0])
        return loss

    def _evaluate(self, batch: dict, stage: str) -> dict:
        output = self._reconstruct(batch)
        target, max_value = batch["target"], batch["max_value"]
        baseline = center_crop(self.baseline(batch["kspace"], batch["system"]), target.shape[-2:])
        batch_size = output.shape[0]
        loss = self.loss_fn(output, target, max_value)
        self.log(f"{stage}/loss", loss, batch_size=batch_size, sync_dist=True)
        for prefix, prediction in (("", output), ("zero_filled_", baseline)):
            for name, metric in self.metrics[f"{stage}_{prefix}"].items():
                metric.update(prediction, target, max_value)
                self.log(
                    f"{stage}/{prefix}{name}",
                    metric,
                    batch_size=batch_size,
                    prog_bar=stage == "val" and not prefix and name == "ssim",
                )
        return {
            "output": output.detach(),
            "baseline": baseline.detach(),
            "target": target,
            "max_value": max_value,
            "loss": loss.detach(),
        }

    def validation_step(self, batch: dict, batch_idx: int) -> dict:
        return self._evaluate(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> dict:
        return self._evaluate(batch, "test")

    def predict_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._reconstruct(batch)

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.recon.parameters())
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self.scheduler_factory(optimizer)}
