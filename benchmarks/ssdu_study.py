"""SSDU from scratch against supervised training, same budget, on the built-in brain data.

Each variant is ``deepinv-lab fit --config configs/varnet.json`` (E2E-VarNet, 4 cascades, 8
coils, 4x random column masks, 10 epochs) with the training objective replaced; validation is
always against the ground truth. Prints one table row per variant: the final validation SSIM,
PSNR, NMSE and the wall time.

    OMP_NUM_THREADS=2 python benchmarks/ssdu_study.py --out ssdu_study [--only NAME ...]
    OMP_NUM_THREADS=2 python benchmarks/ssdu_study.py --out ssdu_study --probe

``--probe`` loads each trained variant's ``last.ckpt`` and measures, on the validation slices,
where its k-space goes: the energy of VarNet's final k-space on the measured locations and
outside them, relative to the measurements' energy, and the mean brightness of its images
relative to the targets'.

The variants isolate what SSDU (Yaman et al., MRM 2020) does differently from a first attempt:
which locations are held out (whole columns or single k-space points), how they are drawn
(uniformly or from SSDU's centred Gaussian), and how many splits each step averages.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

SSDU = "deepinv_lab.training.objectives.SSDU"


def ssdu(granularity: str, selection: str, splits: int = 1, theta_weight: float = 0.0) -> list:
    """The ``objectives`` of one SSDU variant."""
    arguments = {"granularity": granularity, "selection": selection, "splits": splits,
                 "theta_weight": theta_weight}  # fmt: skip
    return [{"class_path": SSDU, "init_args": arguments}]


VARIANTS: dict[str, list[dict] | None] = {
    "supervised": None,
    "ssdu_columns_uniform": ssdu("columns", "uniform"),
    "ssdu_points_uniform": ssdu("points", "uniform"),
    "ssdu_points_gaussian": ssdu("points", "gaussian"),
    "ssdu_columns_uniform_theta": ssdu("columns", "uniform", theta_weight=1.0),
    "ssdu_points_uniform_theta": ssdu("points", "uniform", theta_weight=1.0),
    "ssdu_points_gaussian_theta": ssdu("points", "gaussian", theta_weight=1.0),
    "ssdu_points_uniform_4splits": ssdu("points", "uniform", splits=4),
}


def run(name: str, objectives: list[dict] | None, out: Path, extra: list[str]) -> dict:
    command = [sys.executable, "-m", "deepinv_lab.cli", "fit", "--config", "configs/varnet.json",
               "--trainer.logger.init_args.save_dir", str(out),
               "--trainer.logger.init_args.name", name,
               "--trainer.enable_progress_bar", "false", *extra]  # fmt: skip
    if objectives is not None:
        command += ["--model.init_args.objectives", json.dumps(objectives)]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ)
    seconds = time.perf_counter() - start
    (out / f"{name}.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed (exit {done.returncode}); see {out / f'{name}.log'}")
    line = next(x for x in done.stdout.splitlines() if x.strip().startswith("val metrics:"))
    metrics = dict(re.findall(r"val/(\w+)=([-\d.e]+)", line))
    return {"variant": name, "seconds": round(seconds), **{k: float(v) for k, v in metrics.items()}}


def probe(out: Path) -> None:
    import torch

    from deepinv_lab.data.presets import SimulatedBrainMRIDataModule
    from deepinv_lab.training.module import ReconModule

    config = json.loads(Path("configs/varnet.json").read_text())["data"]["init_args"]
    data = SimulatedBrainMRIDataModule(**{**config, "batch_size": 13})
    data.setup("fit")
    batch = next(iter(data.val_dataloader()))
    y, system, target = batch["y"], batch["system"], batch["target"]
    mask = system.mask.expand_as(y)
    energy = y.abs().square().sum()
    print("| variant | k-space energy on the measured locations / y's | outside them / y's | "
          "image mean / target mean |")  # fmt: skip
    print("|---|---|---|---|")
    for name in VARIANTS:
        checkpoint = out / name / "version_0" / "checkpoints" / "last.ckpt"
        if not checkpoint.is_file():
            continue
        module = ReconModule.load_from_checkpoint(checkpoint, map_location="cpu").eval()
        with torch.no_grad():
            kspace = module.recon.kspace(y, system)
            image = module.reconstruct(batch)
        inside = float((kspace * mask).abs().square().sum() / energy)
        outside = float((kspace * (1 - mask)).abs().square().sum() / energy)
        brightness = float(image.mean() / target.mean())
        print(f"| {name} | {inside:.3f} | {outside:.3f} | {brightness:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("ssdu_study"))
    parser.add_argument("--only", nargs="*", choices=sorted(VARIANTS), default=None)
    parser.add_argument("--probe", action="store_true", help="measure the trained variants")
    parser.add_argument("extra", nargs="*", help="more fit arguments, after --")
    options = parser.parse_args()
    if options.probe:
        return probe(options.out)
    options.out.mkdir(parents=True, exist_ok=True)
    results = options.out / "results.jsonl"
    print("| variant | val SSIM | val PSNR (dB) | val NMSE | wall time (s) |")
    print("|---|---|---|---|---|")
    for name in options.only or VARIANTS:
        row = run(name, VARIANTS[name], options.out, options.extra)
        with open(results, "a") as file:
            file.write(json.dumps(row) + "\n")
        print(f"| {name} | {row['ssim']:.4f} | {row['psnr']:.2f} | {row['nmse']:.4f} | "
              f"{row['seconds']} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
