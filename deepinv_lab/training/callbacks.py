"""Lightning callbacks: TensorBoard image grids, reconstructions written by ``predict``."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter
from pytorch_lightning.loggers import TensorBoardLogger


def image_grid(images: list[torch.Tensor], max_value: float | torch.Tensor) -> torch.Tensor:
    """Tile ``(C, H, W)`` images side by side into one ``(C, H, n W)`` image in ``[0, 1]``."""
    scaled = [(image.float() / max_value).clamp(0, 1) for image in images]
    return torch.cat(scaled, dim=-1)


class ImageGridLogger(pl.Callback):
    """Logs ``target | baseline | reconstruction | 5 x |error|`` of ``num_images`` validation
    samples, spread evenly over the validation set, at every validation epoch (TensorBoard's
    IMAGES tab, tag ``val/target_baseline_recon_error/<batch index>``; without a baseline
    ``val/target_recon_error/<batch index>``).

    Expects ``validation_step`` to return a dict with ``output``, ``baseline`` (or ``None``) and
    ``target`` ``(B, C, H, W)`` and ``max_value`` ``(B,)``; the first sample of each chosen batch
    is shown.
    """

    def __init__(self, num_images: int = 2, error_gain: float = 5.0):
        super().__init__()
        self.num_images = num_images
        self.error_gain = error_gain

    def _chosen_batches(self, trainer: pl.Trainer, dataloader_idx: int) -> set[int]:
        batches = trainer.num_val_batches
        total = int(batches[dataloader_idx] if isinstance(batches, list) else batches)
        if total <= 0 or self.num_images <= 0:
            return set()
        count = min(self.num_images, total)
        # evenly spaced, avoiding the first and last batches (edge slices of a volume)
        return {round((i + 1) * total / (count + 1)) for i in range(count)}

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs,
        batch,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if trainer.sanity_checking or not isinstance(outputs, dict) or "output" not in outputs:
            return
        loggers = [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
        if not loggers or not trainer.is_global_zero:
            return
        if batch_idx not in self._chosen_batches(trainer, dataloader_idx):
            return
        target, output = outputs["target"][0], outputs["output"][0]
        error = self.error_gain * (output - target).abs()
        if outputs.get("baseline") is not None:
            panels, tag = [target, outputs["baseline"][0], output, error], "target_baseline_recon"
        else:
            panels, tag = [target, output, error], "target_recon"
        grid = image_grid(panels, outputs["max_value"][0])
        for logger in loggers:
            logger.experiment.add_image(
                f"val/{tag}_error/{batch_idx}", grid.cpu(), trainer.global_step
            )


class ReconstructionWriter(BasePredictionWriter):
    """Saves what ``predict`` reconstructs: one ``batch_<index>.pt`` per batch, a dict with
    ``reconstruction`` ``(B, 1, H, W)`` and, when the batch has them, ``slice_num`` and
    ``target``, under ``output_dir`` (default: the run's log directory, ``reconstructions/``).
    """

    def __init__(self, output_dir: str | None = None):
        super().__init__(write_interval="batch")
        self.output_dir = output_dir
        self.written: Path | None = None

    def _directory(self, trainer: pl.Trainer) -> Path:
        base = (
            self.output_dir or Path(trainer.log_dir or trainer.default_root_dir) / "reconstructions"
        )
        return Path(base)

    def write_on_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        prediction,
        batch_indices,
        batch,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        directory = self._directory(trainer)
        directory.mkdir(parents=True, exist_ok=True)
        record = {"reconstruction": prediction.detach().cpu()}
        for key in ("slice_num", "target"):
            if isinstance(batch, dict) and key in batch:
                record[key] = batch[key].detach().cpu()
        suffix = f"_{dataloader_idx}" if dataloader_idx else ""
        torch.save(record, directory / f"batch_{batch_idx:05d}{suffix}.pt")
        self.written = directory
