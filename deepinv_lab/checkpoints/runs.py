"""Where a run resumes: its ``checkpoints/last.ckpt``.

A run directory (a logger's ``<save_dir>/<name>/<version>``) keeps its checkpoints in
``checkpoints/``. ``last.ckpt`` holds the whole training state, written at every epoch end and
every N optimizer steps (:class:`~deepinv_lab.training.checkpointing.ResumeCheckpoint`); runs
written before that callback existed may also have ``last-step.ckpt`` (the step checkpoints),
and the newer of the two is where the run resumes.
"""

from __future__ import annotations

import time
from pathlib import Path

from deepinv_lab.errors import UserError

#: the file names of resumable checkpoints in a run's ``checkpoints/``, newest wins
RESUME_NAMES = ("last.ckpt", "last-step.ckpt")


def resume_checkpoint(run: str | Path) -> Path | None:
    """The newest resumable checkpoint of the run directory ``run``, or None."""
    folder = Path(run) / "checkpoints"
    found = [folder / name for name in RESUME_NAMES if (folder / name).is_file()]
    return max(found, key=lambda path: path.stat().st_mtime) if found else None


def resumable_runs(root: str | Path) -> list[Path]:
    """The run directories directly under ``root`` (a logger's ``<save_dir>/<name>``) that hold
    a resumable checkpoint, the most recently written first."""
    root = Path(root)
    if not root.is_dir():
        return []
    runs = [run for run in root.iterdir() if run.is_dir() and resume_checkpoint(run)]
    return sorted(runs, key=lambda run: resume_checkpoint(run).stat().st_mtime, reverse=True)


def version_directory(version: int | str) -> str:
    """The directory name of a logger version: ``version_3`` for 3, a string as it is."""
    return f"version_{version}" if isinstance(version, int) else str(version)


def logger_version(directory: str) -> int | str:
    """The logger version of a run directory: 3 for ``version_3`` (so that the progress bar
    shows ``v_num=3``), the name itself otherwise."""
    number = directory.removeprefix("version_")
    return int(number) if directory.startswith("version_") and number.isdigit() else directory


def run_to_resume(root: str | Path, version: int | str | None) -> Path | None:
    """The run directory ``--ckpt_path last`` resumes under ``root`` (a logger's
    ``<save_dir>/<name>``): the one named by ``version``, else the only resumable one; None
    when there is nothing to resume. Several resumable runs and no ``version`` is a
    :class:`~deepinv_lab.errors.UserError` listing them."""
    root = Path(root)
    if version is not None:
        run = root / version_directory(version)
        return run if resume_checkpoint(run) else None
    runs = resumable_runs(root)
    if len(runs) > 1:
        listed = ", ".join(f"{run.name} ({_written(resume_checkpoint(run))})" for run in runs)
        example = logger_version(runs[0].name)
        raise UserError(
            f"--ckpt_path last: {len(runs)} runs under {root} can be resumed: {listed}; say which "
            f"with --trainer.logger.init_args.version (e.g. {example!r})"
        )
    return runs[0] if runs else None


def _written(checkpoint: Path) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(checkpoint.stat().st_mtime))
    return f"{checkpoint.name} of {stamp}"
