"""The checkpoint a run resumes from: ``<run>/checkpoints/last.ckpt``.

One file holds the whole training state (weights, optimizer and scheduler states, loops, the
callbacks' states, the data position), rewritten atomically at every epoch end and every
``every_n_steps`` optimizer steps. The config's own ``ModelCheckpoint`` keeps the best weights
by a metric; resuming needs only this one.
"""

from __future__ import annotations

import math
import shlex
import sys
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Checkpoint

from deepinv_lab.checkpoints.runs import RESUME_NAMES
from deepinv_lab.errors import UserError

#: the step interval when none is given: half an epoch, at most this many steps
MAX_AUTO_STEPS = 1000


def auto_interval(steps_per_epoch: float) -> int:
    """Optimizer steps between two resume checkpoints when none is given: half an epoch (so
    that even a short run checkpoints mid-epoch), at most :data:`MAX_AUTO_STEPS`."""
    if not math.isfinite(steps_per_epoch):
        return MAX_AUTO_STEPS
    return max(1, min(MAX_AUTO_STEPS, int(steps_per_epoch) // 2))


class ResumeCheckpoint(Checkpoint):
    """Writes ``<log dir>/checkpoints/last.ckpt`` at every epoch end (after validation) and
    every ``every_n_steps`` optimizer steps, and at the end of training; on Ctrl-C it says how
    to resume.

    Args:
        every_n_steps: optimizer steps between two checkpoints within an epoch; ``None``: half
            an epoch, at most 1000 steps (:func:`auto_interval`); ``0``: epoch ends only.
    """

    def __init__(self, every_n_steps: int | None = None):
        super().__init__()
        if every_n_steps is not None and every_n_steps < 0:
            raise UserError(
                f"checkpoint_every_n_steps must be >= 0 (0: epoch ends only), got {every_n_steps}"
            )
        self.every_n_steps = every_n_steps
        self.interval = 0
        self.path: Path | None = None
        #: the command line that started the run (the CLI sets it), for the resume hint
        self.command: list[str] | None = None
        self._saved_step = -1
        self._stale = False

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        log_dir = trainer.log_dir  # a collective under DDP: every process asks
        self.path = Path(log_dir or trainer.default_root_dir) / "checkpoints" / RESUME_NAMES[0]

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.every_n_steps is not None:
            self.interval = self.every_n_steps
        else:
            batches = trainer.num_training_batches
            self.interval = auto_interval(batches / max(1, trainer.accumulate_grad_batches))
        # a resumed run has saved its starting step already
        self._saved_step = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        step = trainer.global_step
        if self.interval and step % self.interval == 0:
            self._save(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # the config's ModelCheckpoint has just updated its best: a checkpoint of this step
        # written before the validation lacks it
        if trainer.state.fn == "fit" and not trainer.sanity_checking:
            self._stale = True

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._save(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._save(trainer)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        if isinstance(exception, KeyboardInterrupt) and trainer.is_global_zero:
            print(self.resume_hint(trainer), file=sys.stderr, flush=True)

    def resume_hint(self, trainer: pl.Trainer) -> str:
        """What to type to continue an interrupted run, and from which step it continues."""
        step = trainer.global_step
        if self.path is None or not self.path.is_file() or self._saved_step < 0:
            return (
                f"\ninterrupted at step {step}, before the first checkpoint: nothing to resume "
                "(run the command again to start over)"
            )
        version = getattr(trainer.logger, "version", None)
        command = resume_command(self.command or sys.argv[1:], version)
        lost = step - self._saved_step
        return (
            f"\ninterrupted at step {step}; {self.path} holds step {self._saved_step}"
            + (f" ({lost} step{'s' if lost > 1 else ''} will be redone)" if lost else "")
            + f".\nTo resume: {command}"
        )

    def _save(self, trainer: pl.Trainer) -> None:
        step = trainer.global_step
        if trainer.sanity_checking or trainer.fast_dev_run:
            return
        if step == self._saved_step and not self._stale:
            return
        trainer.save_checkpoint(self.path, weights_only=False)
        self._saved_step, self._stale = step, False


def resume_command(args: list[str], version: int | str | None) -> str:
    """The command line ``deepinv-lab ARGS`` made to resume its run: ``--ckpt_path last`` and
    the run's logger version instead of whatever ARGS said about them."""
    kept: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg in ("--ckpt_path", "--trainer.logger.init_args.version"):
            skip = True
            continue
        if arg.startswith(("--ckpt_path=", "--trainer.logger.init_args.version=")):
            continue
        kept.append(arg)
    kept += ["--ckpt_path", "last"]
    if version is not None:
        kept += ["--trainer.logger.init_args.version", str(version)]
    return "deepinv-lab " + shlex.join(kept)
