"""A grid run's directory: its config, its status, its logs and checkpoints.

``<out>/<run name>/`` holds

- ``config.json``: the run's full resolved config (what ``deepinv-lab fit --config`` reads);
- ``status.json``: the point (number, name, values) and the run's state: ``running``,
  ``completed`` or ``failed``, the stages done, their times, the error of a failed stage;
- ``fit.log``, ``test.log``: the output of each stage (attempts appended);
- the TensorBoard events, ``checkpoints/`` (``last.ckpt``, the best) and
  ``test_metrics.json`` that the runs write, being their logger's directory.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from deepinv_lab.checkpoints import read_checkpoint, resume_checkpoint
from deepinv_lab.files import write_json_atomic
from deepinv_lab.grid.spec import Point

STATUS = "status.json"
CONFIG = "config.json"


class RunDirectory:
    """The directory of one grid run, ``root / name``."""

    def __init__(self, root: str | Path, name: str):
        self.path = Path(root) / name
        self.name = name

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def log_path(self, stage: str) -> Path:
        return self.path / f"{stage}.log"

    def status(self) -> dict[str, Any] | None:
        """The saved status, or None when the run never started."""
        path = self.path / STATUS
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:
            return {"status": "unreadable"}

    def write_status(self, **fields: Any) -> dict[str, Any]:
        """Update the status with ``fields`` (atomically: a reader never sees half a file)."""
        status = {**(self.status() or {}), **fields}
        write_json_atomic(self.path / STATUS, status, indent=2)
        return status

    def start(self, point: Point, config: dict | None) -> None:
        """Create the directory, save the config (unless None: kept as it is), record the
        point."""
        self.path.mkdir(parents=True, exist_ok=True)
        if config is not None:
            write_json_atomic(self.config_path, config, indent=2)
        self.write_status(
            number=point.number,
            name=point.name,
            overrides=point.overrides,
            host=socket.gethostname(),
            pid=os.getpid(),
        )

    def saved_config(self) -> dict | None:
        if not self.config_path.is_file():
            return None
        return json.loads(self.config_path.read_text())

    def newest_checkpoint(self) -> Path | None:
        """Where an interrupted fit resumes (``checkpoints/last.ckpt``), or None."""
        return resume_checkpoint(self.path)

    def best_checkpoint(self) -> Path | None:
        """The best checkpoint of a finished fit, as recorded by the ModelCheckpoint that monitors
        a metric (read from the newest checkpoint's callback states); None without one."""
        newest = self.newest_checkpoint()
        if newest is None:
            return None
        state = read_checkpoint(newest)
        for key, callback in (state.get("callbacks") or {}).items():
            if not str(key).startswith("ModelCheckpoint") or not isinstance(callback, dict):
                continue
            best = callback.get("best_model_path")
            if callback.get("monitor") and best and Path(best).is_file():
                return Path(best)
        return None

    def state(self, status: dict[str, Any] | None = None) -> str:
        """``pending``, ``running``, ``interrupted`` (a run of this host whose process is gone),
        ``completed`` or ``failed``; from ``status`` when the caller has read it already."""
        status = self.status() if status is None else status
        if status is None or "status" not in status:
            return "pending"
        state = status["status"]
        if state == "running" and status.get("host") == socket.gethostname():
            if not _alive(int(status.get("pid", -1))):
                return "interrupted"
        return state


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
