"""The callbacks every ``deepinv-lab`` run gets unless its config has one of the kind."""

from __future__ import annotations

from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint, ModelSummary

from deepinv_lab.training.callbacks import (
    HParamsLogger,
    ImageGridLogger,
    ReconstructionWriter,
    RNGState,
    Throughput,
    flatten_config,
)
from deepinv_lab.training.checkpointing import ResumeCheckpoint
from deepinv_lab.training.console import say
from deepinv_lab.training.summary import ParameterSummary


def default_callbacks(
    present: list,
    subcommand: str,
    every_n_steps: int | None,
    config: dict,
    checkpointing: bool = True,
    summary: bool = True,
    command: list[str] | None = None,
) -> list:
    """The callbacks to add to ``present`` (the config's): image grids, speed,
    hyperparameters with final metrics, the learning rate, fastMRI-format predictions, the
    random generators' states in checkpoints, the parameter summary, and for ``fit`` the resume
    checkpoint ``last.ckpt`` (:class:`~deepinv_lab.training.checkpointing.ResumeCheckpoint`,
    every ``every_n_steps`` steps and at epoch ends; ``command`` is the command line, for the
    hint it prints on Ctrl-C).

    A ``ModelCheckpoint`` of the config that also saves ``last`` would write a second
    ``last.ckpt``: its ``save_last`` is turned off, with a note.
    """

    def has(kind: type) -> bool:
        return any(isinstance(callback, kind) for callback in present)

    extra = [
        kind()
        for kind in (ImageGridLogger, ReconstructionWriter, Throughput, RNGState)
        if not has(kind)
    ]
    if not has(HParamsLogger):
        params = {k: v for k, v in config.items() if k not in ("config", "ckpt_path")}
        extra.append(HParamsLogger(flatten_config(params)))
    if summary and not has(ModelSummary):
        extra.append(ParameterSummary())
    if subcommand == "fit" and not has(LearningRateMonitor):
        extra.append(LearningRateMonitor())
    if subcommand == "fit" and checkpointing and not has(ResumeCheckpoint):
        resume = ResumeCheckpoint(every_n_steps)
        resume.command = command
        extra.append(resume)
        for callback in present:
            if isinstance(callback, ModelCheckpoint) and callback.save_last:
                callback.save_last = False
                say(
                    "note: the config's ModelCheckpoint does not save last.ckpt; deepinv-lab "
                    "writes it (the whole training state, at epoch ends and every "
                    "checkpoint_every_n_steps steps)"
                )
    return extra
