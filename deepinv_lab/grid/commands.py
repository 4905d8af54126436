"""``deepinv-lab grid``, ``collect`` and ``scaling``: the command-line side of the grids.

The CLI module passes the parser factory in (``config_parser``): the grid resolves configs with
the very parser ``deepinv-lab fit`` uses, and the library does not import the CLI.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deepinv_lab.files import write_json_atomic
from deepinv_lab.grid.collect import GRID_FILE, collect, format_table, write_csv
from deepinv_lab.grid.resolve import ConfigResolver
from deepinv_lab.grid.rundir import RunDirectory
from deepinv_lab.grid.runner import STAGES, GridRunner, needs_run
from deepinv_lab.grid.slurm import slurm_script
from deepinv_lab.grid.spec import GridError, GridSpec, Point, load_grid

TENSORBOARD = "pytorch_lightning.loggers.TensorBoardLogger"


def grid_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepinv-lab grid",
        description="Train one run per point of a grid of config values (docs/scaling.md).",
    )
    parser.add_argument("--config", required=True, help="the base config (JSON)")
    parser.add_argument("--grid", required=True, help="the grid: dotted config key -> values")
    parser.add_argument(
        "--out", help="the grid's directory (default: grids/<grid file name>), one run per folder"
    )
    parser.add_argument("--dry-run", action="store_true", help="check and list the runs only")
    parser.add_argument("--index", type=int, help="run only point I (the number in E<I>_...)")
    parser.add_argument("--no-test", action="store_true", help="fit only; no test after fit")
    parser.add_argument("--jobs", type=int, default=1, help="runs at the same time (default 1)")
    parser.add_argument(
        "--gpus",
        help="one run per GPU at a time: a list of ids (0,1,2,3) or 'all'; each run sees one",
    )
    parser.add_argument(
        "--slurm", action="store_true", help="write a SLURM job-array script instead of running"
    )
    parser.add_argument(
        "--slurm-option",
        action="append",
        default=[],
        metavar="OPTION",
        help="an sbatch option for --slurm, e.g. --slurm-option=--partition=gpu (repeatable)",
    )
    return parser


def grid_command(args: list[str], config_parser: Callable[[], Any]) -> int:
    """``deepinv-lab grid``: check every point, then run them (or list them, or write the
    SLURM script). Returns 0 when every run completed, 1 when one failed."""
    options = grid_parser().parse_args(args)
    if options.jobs < 1:
        raise GridError(f"--jobs must be >= 1, got {options.jobs}")
    spec = load_grid(options.grid)
    out = Path(options.out or Path("grids") / Path(options.grid).stem).resolve()
    stages = ("fit",) if options.no_test else STAGES
    every = spec.points()
    points = every if options.index is None else [spec.point(options.index)]
    gpus = _gpus(options.gpus)

    total = len(every)
    print(f"deepinv-lab grid: {total} runs of {options.config} ({spec.size} in the product)")
    resolver = ConfigResolver(config_parser(), options.config)
    resolver.check_keys(spec)
    configs = {p.name: resolver.resolve_point(p, _managed(out, p)) for p in points}
    for point in points:
        check_existing_run(RunDirectory(out, point.name), configs[point.name])

    if options.dry_run:
        print(_plan(points, out, stages))
        return 0
    out.mkdir(parents=True, exist_ok=True)
    _write_grid_file(out, options, spec, every, stages)
    if options.slurm:
        return _write_slurm(out, options, every)

    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        runner = GridRunner(out, stages, jobs=options.jobs, gpus=gpus)
        states = runner.run(points, configs)
    except KeyboardInterrupt:
        print(f"\ndeepinv-lab grid: interrupted; run it again to resume ({out})", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    failed = sorted(name for name, state in states.items() if state == "failed")
    done = sum(state == "completed" for state in states.values())
    print(f"\ndeepinv-lab grid: {done} of {len(points)} runs completed, {len(failed)} failed")
    if failed:
        print("  failed: " + ", ".join(failed))
    print(f"  results: deepinv-lab collect {out}   (view: tensorboard --logdir {out})")
    return 1 if failed else 0


def collect_command(args: list[str]) -> int:
    """``deepinv-lab collect DIR``: the runs' table, printed and saved as CSV."""
    parser = argparse.ArgumentParser(
        prog="deepinv-lab collect", description="Tabulate a grid's runs and their metrics."
    )
    parser.add_argument("directory", help="the grid's directory (grid --out)")
    parser.add_argument("--csv", help="where the table goes (default: DIR/results.csv)")
    parser.add_argument(
        "--metrics", help="columns to print, comma-separated (default: best val, test)"
    )
    options = parser.parse_args(args)
    results = collect(options.directory)
    rows = results.rows
    path = write_csv(rows, results.keys, options.csv or Path(options.directory) / "results.csv")
    metrics = options.metrics.split(",") if options.metrics else None
    print(format_table(rows, results.varied, metrics))
    states = [row["status"] for row in rows]
    summary = ", ".join(f"{states.count(s)} {s}" for s in dict.fromkeys(states))
    print(f"\n{len(rows)} runs ({summary}); table: {path}")
    return 0


def scaling_command(args: list[str]) -> int:
    """``deepinv-lab scaling DIR``: the metric against the training-set size, one curve per
    value of the other grid keys, with the fitted power laws (PNG and printed)."""
    from deepinv_lab.grid.scaling import format_fits, plot_scaling, scaling_curves

    parser = argparse.ArgumentParser(
        prog="deepinv-lab scaling",
        description="Fit gap = beta * N^alpha per network size and plot metric vs training size.",
    )
    parser.add_argument("directory", help="the grid's directory (grid --out)")
    parser.add_argument("--metric", help="the metric column (default: test/psnr, else best val)")
    parser.add_argument(
        "--size-key", help="the training-set size key (default: the grid key ending train_size)"
    )
    parser.add_argument(
        "--group-key",
        action="append",
        help="keys telling curves apart (default: the grid's other varied keys); repeatable",
    )
    parser.add_argument(
        "--reference", type=float, help="the metric's ideal value: gap = |reference - metric|"
    )
    parser.add_argument("--out", help="the PNG (default: DIR/scaling.png)")
    options = parser.parse_args(args)
    results = collect(options.directory)
    rows, varied = results.rows, results.varied
    size_key = options.size_key or _size_key(results.keys)
    groups = (
        options.group_key
        if options.group_key is not None
        else [key for key in varied if key != size_key]
    )
    metric = options.metric or _default_metric(rows)
    curves, gap_label = scaling_curves(rows, size_key, metric, groups, options.reference)
    path = plot_scaling(
        curves,
        metric,
        gap_label,
        size_key.rsplit(".", 1)[-1],
        options.out or Path(options.directory) / "scaling.png",
    )
    print(f"{metric}: gap = {gap_label} = beta * N^alpha, N = {size_key}\n")
    print(format_fits(curves))
    print(f"\nplot: {path}")
    return 0


def _managed(out: Path, point: Point) -> dict[str, Any]:
    """What the grid sets in every run: TensorBoard logs in ``out/<run name>``, so that
    ``tensorboard --logdir out`` shows every run (and compares them in its HParams tab)."""
    logger = {"save_dir": str(out), "name": "", "version": point.name}
    return {"trainer.logger": {"class_path": TENSORBOARD, "init_args": logger}}


def check_existing_run(run: RunDirectory, config: dict) -> None:
    """A run directory left by an earlier call must hold the same run: resuming a different
    config from its checkpoints would mix two experiments."""
    saved = run.saved_config()
    if saved is None or _without_logger(saved) == _without_logger(config):
        return
    if not needs_run(run, ("fit",)):
        print(
            f"note: {run.name} was trained with a different config (the base config or the grid "
            "changed since); its results are kept: delete its directory to train it again"
        )
    else:
        raise GridError(
            f"{run.path} holds an unfinished run of a different config (the base config or the "
            "grid changed); delete that directory or choose another --out"
        )


def _without_logger(config: dict) -> dict:
    trainer = {k: v for k, v in config.get("trainer", {}).items() if k != "logger"}
    return {**config, "trainer": trainer}


def _plan(points: list[Point], out: Path, stages: tuple[str, ...]) -> str:
    lines = [f"runs ({' then '.join(stages)}), in {out}:"]
    for point in points:
        state = RunDirectory(out, point.name).state()
        values = "  ".join(f"{k}={json.dumps(v)}" for k, v in point.overrides.items())
        lines.append(f"  {point.name}  [{state}]  {values}")
    return "\n".join(lines)


def _write_grid_file(
    out: Path, options, spec: GridSpec, every: list[Point], stages: tuple[str, ...]
) -> None:
    points = [{"number": p.number, "name": p.name, "overrides": p.overrides} for p in every]
    write_json_atomic(
        out / GRID_FILE,
        {
            "config": str(Path(options.config).resolve()),
            "grid": str(Path(options.grid).resolve()),
            "spec": json.loads(Path(options.grid).read_text()),
            "varied": spec.keys,
            "keys": [*spec.keys, *spec.fixed],
            "stages": list(stages),
            "points": points,
        },
        indent=2,
    )


def _write_slurm(out: Path, options, every: list[Point]) -> int:
    command = [
        sys.executable, "-m", "deepinv_lab.cli", "grid",
        "--config", str(Path(options.config).resolve()),
        "--grid", str(Path(options.grid).resolve()),
        "--out", str(out),
    ]  # fmt: skip
    if options.no_test:
        command.append("--no-test")
    numbers = [p.number for p in every]
    script = slurm_script(
        Path(options.grid).stem, numbers, command, out, Path.cwd(), options.slurm_option
    )
    (out / "slurm").mkdir(exist_ok=True)
    path = out / "grid.sbatch"
    path.write_text(script)
    print(f"SLURM job array of {len(numbers)} tasks: {path}")
    print(f"  submit: sbatch {shlex.quote(str(path))}")
    return 0


def _gpus(text: str | None) -> list[str] | None:
    if text is None:
        return None
    if text == "all":
        import torch

        count = torch.cuda.device_count()
        if count == 0:
            raise GridError("--gpus all: no CUDA device is visible")
        return [str(i) for i in range(count)]
    gpus = [g.strip() for g in text.split(",") if g.strip()]
    if not gpus or not all(g.isdigit() for g in gpus):
        raise GridError(f"--gpus takes GPU ids like 0,1,2 or 'all', got {text!r}")
    return gpus


def _size_key(keys: list[str]) -> str:
    candidates = [key for key in keys if key.rsplit(".", 1)[-1] == "train_size"]
    if len(candidates) != 1:
        raise GridError(f"cannot tell the training-set size key among {keys}: give --size-key")
    return candidates[0]


def _default_metric(rows: list[dict]) -> str:
    present = {column for row in rows for column in row}
    for metric in ("test/psnr", "val/psnr_best", "test/ssim", "val/ssim_best", "val/loss_best"):
        if metric in present:
            return metric
    raise GridError("no metric found in the runs (have any completed?); give --metric")


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
