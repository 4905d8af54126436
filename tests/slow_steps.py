"""A callback that slows training down, so that a test can kill a run between two steps, or that
presses Ctrl-C itself at a given step."""

import os
import signal
import time

import pytorch_lightning as pl


class SlowSteps(pl.Callback):
    """Sleeps ``seconds`` before every training batch (after the previous step's checkpoint);
    sends the process a SIGINT, as Ctrl-C does, before the batch after step ``interrupt_at``."""

    def __init__(self, seconds: float = 0.5, interrupt_at: int = -1):
        super().__init__()
        self.seconds = seconds
        self.interrupt_at = interrupt_at

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if trainer.global_step == self.interrupt_at:
            os.kill(os.getpid(), signal.SIGINT)  # delivered at once, in the sleep below
        time.sleep(self.seconds)
