"""A callback that slows training down, so that a test can kill a run between two steps."""

import time

import pytorch_lightning as pl


class SlowSteps(pl.Callback):
    """Sleeps ``seconds`` before every training batch (after the previous step's checkpoint)."""

    def __init__(self, seconds: float = 0.5):
        super().__init__()
        self.seconds = seconds

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        time.sleep(self.seconds)
