"""Lightning callbacks: TensorBoard image grids."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import TensorBoardLogger


def image_grid(images: list[torch.Tensor], max_value: float | torch.Tensor) -> torch.Tensor:
    """Tile ``(1, H, W)`` images side by side into one ``(1, H, n W)`` image in ``[0, 1]``."""
    scaled = [(image.float() / max_value).clamp(0, 1) for image in images]
    return torch.cat(scaled, dim=-1)


class ImageGridLogger(pl.Callback):
    """Logs ``target | zero-filled | reconstruction | 5 x |error|`` for the first ``num_images``
    validation samples at every validation epoch (TensorBoard's IMAGES tab).

    Expects ``validation_step`` to return a dict with ``output``, ``baseline`` and ``target``
    ``(B, 1, H, W)`` and ``max_value`` ``(B,)``.
    """

    def __init__(self, num_images: int = 2, error_gain: float = 5.0):
        super().__init__()
        self.num_images = num_images
        self.error_gain = error_gain

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
        batch_size = outputs["output"].shape[0]
        first = batch_idx * batch_size
        for i in range(max(0, min(batch_size, self.num_images - first))):
            target, output = outputs["target"][i], outputs["output"][i]
            grid = image_grid(
                [target, outputs["baseline"][i], output, self.error_gain * (output - target).abs()],
                outputs["max_value"][i],
            )
            for logger in loggers:
                logger.experiment.add_image(
                    f"val/target_zerofilled_recon_error/{first + i}",
                    grid.cpu(),
                    trainer.global_step,
                )
