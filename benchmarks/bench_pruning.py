"""Pruning benchmark: how much faster a reconstruction gets when half the channels of a trained
Recon's priors are removed, and how much validation PSNR fine-tuning recovers.

Each checkpoint is pruned with ``deepinv-lab prune`` (the same command users run), which
measures the unpruned, pruned and fine-tuned networks side by side in one process: parameters,
multiply-accumulates per reconstruction, CPU latency per reconstruction (median of repeated
timings after warm-up, batch of one validation slice), CUDA latency when a GPU is present, and
validation PSNR/SSIM on the built-in data. The target of issue 9: >= 1.5x CPU speedup at ratio
0.5 and < 0.3 dB PSNR loss after fine-tuning.

Train the checkpoints first with the quick configs (built-in simulated brain MRI)::

    deepinv-lab fit --config configs/varnet.json   # logs/varnet/version_N/checkpoints/last.ckpt
    deepinv-lab fit --config configs/deq.json      # logs/deq/version_N/checkpoints/last.ckpt

then::

    OMP_NUM_THREADS=2 python benchmarks/bench_pruning.py \\
        --run varnet=logs/varnet/version_0/checkpoints/last.ckpt \\
        --run deq=logs/deq/version_0/checkpoints/last.ckpt \\
        --ratio 0.5 --finetune supervised --steps 300 --out bench_pruning

``--run NAME=CKPT`` prunes ``CKPT`` with ``configs/NAME.json``; ``--ratios`` runs a sweep
instead (``sweep.png`` in each output directory); ``--finetune`` takes several strategies
separated by ``;`` to compare them (each its own output directory).
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path

THREADS = os.environ.setdefault("OMP_NUM_THREADS", "2")
ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", action="append", required=True, help="NAME=CKPT")
    parser.add_argument("--ratio", type=float, default=0.5)
    parser.add_argument("--ratios", default=None, help="a sweep, e.g. 0.05,0.1,0.2,0.3,0.4,0.5")
    parser.add_argument(
        "--finetune",
        default="supervised",
        help="strategies, ';' between alternatives: 'supervised;ssdu;distillation'",
    )
    parser.add_argument("--steps", type=int, default=300, help="fine-tuning steps")
    parser.add_argument("--importance", default="l1")
    parser.add_argument("--scope", default="per_block")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", default="bench_pruning")
    args = parser.parse_args()

    import torch

    from deepinv_lab.cli import main as deepinv_lab

    torch.set_num_threads(int(THREADS))
    summary = []
    for run in args.run:
        name, _, checkpoint = run.partition("=")
        for strategies in args.finetune.split(";"):
            label = strategies.replace(",", "+") or "none"
            out = Path(args.out) / f"{name}_{label}"
            ratios = ["--prune.ratio", str(args.ratio)]
            if args.ratios:
                ratios = ["--prune.ratios", args.ratios]
            command = [
                "prune", "--config", str(ROOT / "configs" / f"{name}.json"),
                "--ckpt_path", checkpoint, *ratios,
                "--prune.importance", args.importance, "--prune.scope", args.scope,
                "--prune.finetune", strategies or "none",
                "--prune.finetune_steps", str(args.steps),
                "--prune.repeats", str(args.repeats), "--prune.out", str(out),
            ]  # fmt: skip
            started = time.perf_counter()
            if deepinv_lab(command) != 0:
                raise SystemExit(f"deepinv-lab {' '.join(command)} failed")
            elapsed = time.perf_counter() - started
            with open(out / "report.csv") as file:
                for row in csv.DictReader(file):
                    summary.append({"recon": name, "finetune": label, **row, "wall_s": elapsed})

    print(f"\nOMP_NUM_THREADS={THREADS}, torch threads {torch.get_num_threads()}")
    header = ("recon", "finetune", "ratio", "stage", "prior_params", "gmacs", "latency_cpu_ms",
              "speedup_cpu", "latency_cuda_ms", "val_psnr", "psnr_change", "val_ssim")  # fmt: skip
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in summary:
        print("| " + " | ".join(_cell(row.get(key)) for key in header) + " |")


def _cell(value) -> str:
    if value in (None, ""):
        return "-"
    try:
        number = float(value)
    except ValueError:
        return str(value)
    return f"{number:.4g}" if abs(number) < 1e4 else f"{number:,.0f}"


if __name__ == "__main__":
    main()
