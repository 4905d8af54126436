"""Running a grid's points: one ``deepinv-lab fit`` (then ``test``) process per run.

Each run is its own process: a run that crashes, or runs out of memory, does not take the others
with it, and each GPU job sees one device (``CUDA_VISIBLE_DEVICES``). Runs that completed every
stage are skipped; a run that was interrupted or failed is started again and resumes from its
newest checkpoint (``last.ckpt`` or ``last-step.ckpt``), the way ``fit --ckpt_path`` resumes.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

from deepinv_lab.grid.rundir import RunDirectory
from deepinv_lab.grid.spec import Point

STAGES = ("fit", "test")


def needs_run(run: RunDirectory, stages: tuple[str, ...]) -> bool:
    """Whether some of ``stages`` have not completed in ``run``."""
    status = run.status() or {}
    return not set(stages) <= set(status.get("stages_done", []))


class GridRunner:
    """Runs points, ``jobs`` at a time; with ``gpus``, each running job holds one of them.

    Args:
        out: the grid's directory (one subdirectory per run).
        stages: ``("fit", "test")`` or ``("fit",)``.
        jobs: runs at the same time.
        gpus: GPU ids handed out one per running job (``CUDA_VISIBLE_DEVICES``); None = leave
            the devices to the config.
        python: the interpreter that runs ``deepinv_lab.cli``.
        echo: where progress lines go.
    """

    def __init__(
        self,
        out: str | Path,
        stages: tuple[str, ...] = STAGES,
        jobs: int = 1,
        gpus: list[str] | None = None,
        python: str = sys.executable,
        echo: Callable[[str], None] = print,
    ):
        self.out = Path(out)
        self.stages = stages
        self.jobs = max(1, len(gpus) if gpus else jobs)
        self.gpus = gpus
        self.python = python
        self._echo = echo
        self._lock = threading.Lock()
        self._processes: dict[str, subprocess.Popen] = {}
        self._interrupted = False

    def echo(self, line: str) -> None:
        with self._lock:
            self._echo(line)

    def run(self, points: list[Point], configs: dict[str, dict]) -> dict[str, str]:
        """Run the points that still need it; returns each point's final state by name."""
        states: dict[str, str] = {}
        todo = []
        for point in points:
            run = RunDirectory(self.out, point.name)
            if not needs_run(run, self.stages):
                states[point.name] = "completed"
                self.echo(f"{point.name}: completed earlier, skipped")
            else:
                todo.append(point)
        free: queue.Queue = queue.Queue()
        for gpu in self.gpus or [None] * self.jobs:
            free.put(gpu)

        def work(index: int, point: Point) -> None:
            gpu = free.get()
            try:
                if not self._interrupted:
                    label = f"[{index}/{len(todo)}] {point.name}"
                    states[point.name] = self.run_point(point, configs[point.name], gpu, label)
            finally:
                free.put(gpu)

        pool = ThreadPoolExecutor(max_workers=self.jobs)
        futures = [pool.submit(work, i, p) for i, p in enumerate(todo, start=1)]
        try:
            for future in futures:
                future.result()
        except KeyboardInterrupt:
            self._interrupted = True
            self._stop_all()
            pool.shutdown(wait=True)
            raise
        pool.shutdown(wait=True)
        return states

    def run_point(self, point: Point, config: dict, gpu: str | None, label: str) -> str:
        """Run the stages of one point that have not completed; returns its final state."""
        run = RunDirectory(self.out, point.name)
        resumed = run.newest_checkpoint()
        previous = run.status() or {}
        done, seconds = list(previous.get("stages_done", [])), dict(previous.get("seconds", {}))
        if "fit" in done:  # a fitted run keeps the config it ran
            config = run.saved_config() or config
            run.start(point, None)
        else:
            run.start(point, config)
        run.write_status(status="running", started=_now(), gpu=gpu, error=None, returncode=None)
        where = f" on GPU {gpu}" if gpu is not None else ""
        resuming = f", resuming from {resumed.name}" if resumed else ""
        self.echo(f"{label}: running{where}{resuming}")
        # the log is a file: a progress bar's carriage returns would fill it, not help
        options = [] if _has_progress_bar(config) else ["--trainer.enable_progress_bar=false"]
        for stage in self.stages:
            if stage in done:
                continue
            checkpoint = run.newest_checkpoint() if stage == "fit" else self._tested(run)
            if stage != "fit" and checkpoint is None:
                return self._fail(run, label, stage, None, "the fit wrote no checkpoint to test")
            started = time.perf_counter()
            returncode = self._execute(run, stage, checkpoint, gpu, options)
            if self._interrupted:
                run.write_status(status="interrupted", stage=stage)
                return "interrupted"
            if returncode != 0:
                return self._fail(run, label, stage, returncode, last_error(run.log_path(stage)))
            done.append(stage)
            seconds[stage] = round(time.perf_counter() - started, 1)
            extra = {"tested_checkpoint": str(checkpoint)} if stage == "test" else {}
            run.write_status(stages_done=done, seconds=seconds, **extra)
        run.write_status(status="completed", finished=_now())
        times = ", ".join(f"{stage} {s:.0f} s" for stage, s in seconds.items())
        self.echo(f"{label}: completed ({times})")
        return "completed"

    def _tested(self, run: RunDirectory) -> Path | None:
        """The checkpoint ``test`` evaluates: the best one when a ModelCheckpoint monitors a
        metric, else the final one."""
        return run.best_checkpoint() or run.newest_checkpoint()

    def _execute(
        self, run: RunDirectory, stage: str, checkpoint: Path | None, gpu, options: list[str]
    ) -> int:
        command = [self.python, "-m", "deepinv_lab.cli", stage, "--config", str(run.config_path)]
        if checkpoint is not None:
            command += ["--ckpt_path", str(checkpoint)]
        command += options
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = str(gpu)
            command.append("--trainer.devices=1")
        with open(run.log_path(stage), "a") as log:
            log.write(f"\n=== {_now()} {socket.gethostname()}: {' '.join(command)}\n")
            log.flush()
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
            with self._lock:
                self._processes[run.name] = process
            try:
                return process.wait()
            finally:
                with self._lock:
                    self._processes.pop(run.name, None)

    def _fail(self, run, label: str, stage: str, returncode: int | None, error: str) -> str:
        run.write_status(
            status="failed", stage=stage, returncode=returncode, error=error, finished=_now()
        )
        self.echo(f"{label}: FAILED in {stage}: {error}  (log: {run.log_path(stage)})")
        return "failed"

    def _stop_all(self) -> None:
        """Ctrl-C: interrupt the running stages (they stop as Lightning does on Ctrl-C)."""
        with self._lock:
            processes = list(self._processes.values())
        for process in processes:
            with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
                os.killpg(process.pid, signal.SIGINT)
        for process in processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()


def _has_progress_bar(config: dict) -> bool:
    """Whether the config asks for a progress bar of its own (then it must stay enabled)."""
    callbacks = config.get("trainer", {}).get("callbacks") or []
    callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
    return any("ProgressBar" in str(c.get("class_path", "")) for c in callbacks if c)


def last_error(log: Path) -> str:
    """The line of a stage's log that says what went wrong: deepinv-lab's one-line error, else
    the exception that ended the traceback, else the last line."""
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines()]
    except OSError:
        return "no log"
    lines = [line for line in lines if line]
    for line in reversed(lines):
        if line.startswith("deepinv-lab: error:"):
            return line[len("deepinv-lab: error:") :].strip()[:400]
    for line in reversed(lines):
        head = line.split(":", 1)[0]
        if head.endswith(("Error", "Exception", "Interrupt")) and " " not in head:
            return line[:400]
    return lines[-1][:400] if lines else "no output"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
