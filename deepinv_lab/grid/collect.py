"""One table of a grid's runs: hyperparameters, state, final and best validation metrics, test
metrics, read from what the runs wrote (``status.json``, TensorBoard events,
``test_metrics.json``).

Columns: ``number``, ``name``, ``status``, the grid's keys (the values of the run), ``fit_s`` and
``test_s`` (seconds), ``<metric>_final`` and ``<metric>_best`` for every validation metric
(``val/psnr_final``: the last epoch's value, ``val/psnr_best``: the best over epochs, the
maximum for PSNR/SSIM, the minimum for losses and errors), the final training loss, every
``test/<metric>`` (means over volumes), and ``error`` (why a run failed). The baselines'
validation metrics (``val/<name>_ssim_best``) come after the test metrics, apart from the
Recon's.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepinv_lab.grid.rundir import STATUS, RunDirectory
from deepinv_lab.grid.spec import GridError
from deepinv_lab.training.baselines import is_baseline_metric

GRID_FILE = "grid.json"
#: metrics where larger is better; every other validation metric is an error or a loss
HIGHER_IS_BETTER = ("psnr", "ssim")


@dataclass
class GridResults:
    """A grid's table: ``rows`` (one per run, in number order), ``keys`` (every key the grid
    sets: the hyperparameter columns) and ``varied`` (the keys that vary from run to run)."""

    rows: list[dict[str, Any]]
    keys: list[str]
    varied: list[str]


def collect(out: str | Path) -> GridResults:
    """The table of the grid in ``out``. Points listed in ``grid.json`` that never started are
    ``pending``; a run whose process is gone without finishing is ``interrupted``."""
    out = Path(out)
    if not out.is_dir():
        raise GridError(f"grid directory not found: {out}")
    grid = _read_json(out / GRID_FILE) or {}
    points = {p["name"]: p for p in grid.get("points", [])}
    names = set(points) | {p.parent.name for p in out.glob(f"*/{STATUS}")}
    if not names:
        raise GridError(f"{out} holds no grid runs (no {GRID_FILE}, no */{STATUS})")
    runs = {name: RunDirectory(out, name) for name in names}
    statuses = {name: run.status() or {} for name, run in runs.items()}

    def number(name: str) -> int:
        return int(statuses[name].get("number") or points.get(name, {}).get("number") or 0)

    keys = list(grid.get("keys", []))
    rows = []
    for name in sorted(names, key=lambda name: (number(name), name)):
        run, status = runs[name], statuses[name]
        overrides = status.get("overrides") or points.get(name, {}).get("overrides", {})
        keys += [key for key in overrides if key not in keys]
        row: dict[str, Any] = {
            "number": status.get("number", points.get(name, {}).get("number")),
            "name": name,
            "status": run.state(status),
            **overrides,
        }
        seconds = status.get("seconds", {})
        row.update({f"{stage}_s": value for stage, value in seconds.items()})
        if run.path.is_dir():
            row.update(validation_metrics(run.path))
            row.update(test_metrics(run.path))
        if row["status"] == "failed":
            row["error"] = f"{status.get('stage', '?')}: {status.get('error', '')}"
        rows.append(row)
    varied = grid.get("varied") or [k for k in keys if len({_cell(r.get(k)) for r in rows}) > 1]
    return GridResults(rows, keys, varied)


def validation_metrics(directory: Path) -> dict[str, float]:
    """Final and best value of each ``val/*`` scalar, and the final ``train/loss``, from the
    TensorBoard events in ``directory``."""
    scalars = read_scalars(directory)
    metrics: dict[str, float] = {}
    for tag, values in scalars.items():
        if tag.startswith("val/") and values:
            better = max if tag.rsplit("/", 1)[-1].endswith(HIGHER_IS_BETTER) else min
            metrics[f"{tag}_final"] = values[-1]
            metrics[f"{tag}_best"] = better(values)
    for tag in ("train/loss_epoch", "train/loss"):
        if scalars.get(tag):
            metrics["train/loss_final"] = scalars[tag][-1]
            break
    return metrics


def read_scalars(directory: Path) -> dict[str, list[float]]:
    """Every scalar tag's values in step order from the event files directly in ``directory``
    (later attempts of a resumed run replace the steps they repeat)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    if not any(directory.glob("events.out.tfevents.*")):
        return {}
    accumulator = EventAccumulator(str(directory), size_guidance={"scalars": 0})
    accumulator.Reload()
    scalars = {}
    for tag in accumulator.Tags().get("scalars", []):
        by_step = {event.step: event.value for event in accumulator.Scalars(tag)}
        scalars[tag] = [float(by_step[step]) for step in sorted(by_step)]
    return scalars


def test_metrics(directory: Path) -> dict[str, float]:
    """The mean test metrics a run's ``deepinv-lab test`` wrote (``test_metrics.json``)."""
    content = _read_json(directory / "test_metrics.json") or {}
    return {k: float(v) for k, v in content.get("mean", {}).items() if not k.endswith("/loss")}


def columns(rows: list[dict[str, Any]], keys: list[str]) -> list[str]:
    """The table's columns in a fixed order: identity, hyperparameters, times, the Recon's
    validation metrics, test metrics, the baselines' validation metrics (``val/<name>_ssim_*``,
    :func:`~deepinv_lab.training.baselines.is_baseline_metric`), others, error."""
    present = list(dict.fromkeys(column for row in rows for column in row))
    head = ["number", "name", "status", *keys]
    times = sorted(c for c in present if c.endswith("_s") and "/" not in c)
    val = sorted(c for c in present if c.startswith("val/") and not is_baseline_metric(c))
    baseline = sorted(c for c in present if c.startswith("val/") and is_baseline_metric(c))
    test = sorted(c for c in present if c.startswith("test/"))
    other = [c for c in present if c not in {*head, *times, *val, *baseline, *test, "error"}]
    tail = ["error"] if "error" in present else []
    return [*head, *times, *val, *test, *baseline, *other, *tail]


def write_csv(rows: list[dict[str, Any]], keys: list[str], path: str | Path) -> Path:
    """The table as CSV (values as JSON for lists and objects)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = columns(rows, keys)
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(row.get(k)) for k in fields})
    return path


def format_table(rows: list[dict[str, Any]], keys: list[str], metrics: list[str] | None) -> str:
    """The table as aligned text; grid keys shown by their last name, metrics as chosen (by
    default the validation metrics' best values and the test metrics)."""
    fields = columns(rows, keys)
    if metrics is None:
        metrics = [
            c for c in fields if (c.startswith("val/") and c.endswith("_best")) or "test/" in c
        ]
        metrics = [c for c in metrics if not is_baseline_metric(c) and "/loss" not in c]
    shown = ["name", "status", *keys, *[c for c in fields if c.endswith("_s")], *metrics]
    if "error" in fields:
        shown.append("error")
    titles = [_short(column, keys) for column in shown]
    table = [[_cell(row.get(column), digits=4) for column in shown] for row in rows]
    widths = [max(len(t), *(len(r[i]) for r in table)) for i, t in enumerate(titles)]
    lines = ["  ".join(t.ljust(w) for t, w in zip(titles, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in table]
    return "\n".join(line.rstrip() for line in lines)


def _short(column: str, keys: list[str]) -> str:
    if column not in keys:
        return column
    names = [n for n in column.split(".") if n != "init_args"]
    short = names[-1]
    clash = [k for k in keys if k != column and k.split(".")[-1] == column.split(".")[-1]]
    return ".".join(names[-2:]) if clash and len(names) > 1 else short


def _cell(value: Any, digits: int | None = None) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.{digits}g}" if digits else repr(value)
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise GridError(f"{path} is not valid JSON: {error}") from None
