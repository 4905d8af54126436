"""Where a run resumes: its ``checkpoints/last.ckpt``.

A run directory (a logger's ``<save_dir>/<name>/<version>``) keeps its checkpoints in
``checkpoints/``. ``last.ckpt`` holds the whole training state, written at every epoch end and
every N optimizer steps (:class:`~deepinv_lab.training.checkpointing.ResumeCheckpoint`); runs
written before that callback existed may also have ``last-step.ckpt`` (the step checkpoints),
and the newer of the two is where the run resumes.
"""

from __future__ import annotations

from pathlib import Path

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
