"""The pruning report: one row per stage (unpruned, pruned, fine-tuned) and ratio, printed as a
table, written as CSV, logged to TensorBoard, and plotted as speed against quality."""

from __future__ import annotations

import csv
from pathlib import Path

#: the report's columns, in order
COLUMNS = (
    "ratio",
    "stage",
    "params",
    "prior_params",
    "gmacs",
    "latency_cpu_ms",
    "unpruned_cpu_ms",
    "speedup_cpu",
    "latency_cuda_ms",
    "unpruned_cuda_ms",
    "speedup_cuda",
    "val_psnr",
    "val_ssim",
    "psnr_change",
    "checkpoint",
)
STAGES = ("unpruned", "pruned", "finetuned")


def with_changes(rows: list[dict], reference: dict) -> list[dict]:
    """The rows with their PSNR change relative to ``reference`` (the unpruned row); speedups
    are set where the latencies are measured, beside the reference."""
    out = []
    for row in rows:
        psnr, base = row.get("val_psnr"), reference.get("val_psnr")
        change = psnr - base if psnr is not None and base is not None else None
        out.append({**row, "psnr_change": change})
    return out


def format_table(rows: list[dict]) -> str:
    """The rows as an aligned text table (paths and empty columns left out)."""
    shown = [c for c in COLUMNS if c != "checkpoint" and any(r.get(c) is not None for r in rows)]
    cells = [[_cell(row.get(c)) for c in shown] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(shown)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(shown, widths, strict=True))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"
    return str(value)


def write_csv(rows: list[dict], path: Path) -> Path:
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def log_tensorboard(rows: list[dict], directory: Path) -> None:
    """Scalars ``prune/<stage>/<metric>`` against the ratio in percent (the step), and the
    table as text, in ``directory``."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(directory))
    try:
        for row in rows:
            step = round(100 * row["ratio"])
            for key in ("val_psnr", "val_ssim", "gmacs", "latency_cpu_ms", "latency_cuda_ms",
                        "speedup_cpu", "speedup_cuda", "params"):  # fmt: skip
                if row.get(key) is not None:
                    writer.add_scalar(f"prune/{row['stage']}/{key}", row[key], step)
        writer.add_text("prune/report", "```\n" + format_table(rows) + "\n```")
    finally:
        writer.close()


def plot_sweep(rows: list[dict], path: Path, title: str = "") -> Path:
    """Validation PSNR and SSIM against the CPU speedup, one line per stage, each point
    labelled with its ratio; the unpruned network is the star at speedup 1."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, metric, label in zip(
        axes, ("val_psnr", "val_ssim"), ("validation PSNR (dB)", "validation SSIM"), strict=True
    ):
        for stage, style in (("pruned", "o--"), ("finetuned", "s-")):
            points = [r for r in rows if r["stage"] == stage and r.get(metric) is not None]
            points.sort(key=lambda r: r["ratio"])
            if not points:
                continue
            xs = [r["speedup_cpu"] for r in points]
            ys = [r[metric] for r in points]
            axis.plot(xs, ys, style, label="fine-tuned" if stage == "finetuned" else stage)
            for r, x, y in zip(points, xs, ys, strict=True):
                axis.annotate(f"{r['ratio']:g}", (x, y), textcoords="offset points",
                              xytext=(3, 3), fontsize=7)  # fmt: skip
        unpruned = [r for r in rows if r["stage"] == "unpruned" and r.get(metric) is not None]
        if unpruned:
            axis.plot([1.0], [unpruned[0][metric]], "k*", markersize=12, label="unpruned")
        axis.set_xlabel("CPU speedup per reconstruction (x)")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
