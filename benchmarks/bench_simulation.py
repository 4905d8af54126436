"""Simulating measurements against the training step, for the radial MoDL config: where
``data.simulate_on`` should run, and what the simulation costs the training loop.

    OMP_NUM_THREADS=2 python benchmarks/bench_simulation.py [--config configs/radial_modl.json]
        [--downsample 2] [--steps 30] [--workers 2] [--device cpu]

Built from the config's own ``model`` and ``data`` blocks (``--downsample`` overrides the source's;
1 = 224 x 192 images). Measured, each as a median per item or per batch:

- *simulate one item*: what one DataLoader worker does per item with ``simulate_on="workers"``:
  read the ground truth, draw the trajectory, coil maps and noise seed, one multicoil NUFFT
  forward, noise, density weighting (in the main process, ``OMP_NUM_THREADS`` threads);
- *simulate one batch on the device*: ``simulate_on="device"``, the same for a whole batch on
  ``--device`` after the loader delivered the clean images;
- *training step*: the Recon's forward, the loss, backward and the optimizer step on one batch;
- the training loop itself, ``--steps`` steps after a warm-up, with the simulation in ``--workers``
  DataLoader workers, in the main process (0 workers), and on the device: the time the loop waits
  for data (or simulates on the device), as a fraction of the step time.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build(config: dict, downsample: int, simulate_on: str, workers: int):
    from jsonargparse import ArgumentParser
    from pytorch_lightning import LightningDataModule

    from deepinv_lab.training.module import ReconModule

    data = copy.deepcopy(config["data"])
    data["init_args"]["source"]["init_args"]["downsample"] = downsample
    data["init_args"]["simulate_on"] = simulate_on
    data["init_args"]["num_workers"] = workers
    parser = ArgumentParser()
    parser.add_argument("--model", type=ReconModule)
    parser.add_argument("--data", type=LightningDataModule)
    blocks = {"model": copy.deepcopy(config["model"]), "data": data}
    built = parser.instantiate(parser.parse_object(blocks))
    return built.model, built.data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default=str(ROOT / "configs" / "radial_modl.json"))
    parser.add_argument("--downsample", type=int, default=2)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default=None, help="cuda if available, else cpu")
    args = parser.parse_args()

    import torch
    import torch.nn.functional as F
    from _timing import _sync

    from deepinv_lab.data.collate import batch_to_device
    from deepinv_lab.data.simulation import simulate_batch

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    config = json.loads(Path(args.config).read_text())
    module, workers_dm = build(config, args.downsample, "workers", 0)
    recon = module.recon.to(device)
    optimizer = torch.optim.Adam(recon.parameters(), lr=1e-3)

    def step(batch: dict) -> None:
        optimizer.zero_grad()
        output = module.reconstruct(batch)
        F.l1_loss(output, batch["target"]).backward()
        optimizer.step()
        _sync(device)

    def timed(fn, *fn_args) -> float:
        _sync(device)
        start = time.perf_counter()
        fn(*fn_args)
        _sync(device)
        return time.perf_counter() - start

    train = workers_dm.train_set
    batch_size = workers_dm.batch_size
    item_times = [timed(train.__getitem__, i) for i in range(min(12, len(train)))][2:]
    example = batch_to_device(workers_dm.collate_fn([train[i] for i in range(batch_size)]), device)
    step(example)
    step_times = [timed(step, example) for _ in range(10)]

    _, device_dm = build(config, args.downsample, "device", 0)
    clean = [device_dm.train_set[i] for i in range(batch_size)]

    def simulate_on_device() -> None:
        batch = batch_to_device(device_dm.collate_fn(copy.deepcopy(clean)), device)
        simulate_batch(batch, device_dm.physics)

    simulate_on_device()
    device_times = [timed(simulate_on_device) for _ in range(10)]

    def loop(datamodule) -> tuple[float, float]:
        """Median seconds waiting for (and simulating) a batch, and per training step."""
        waits, steps = [], []
        iterator = iter(datamodule.train_dataloader())
        for index in range(args.steps + 3):
            start = time.perf_counter()
            batch = datamodule.on_after_batch_transfer(batch_to_device(next(iterator), device), 0)
            _sync(device)
            ready = time.perf_counter()
            step(batch)
            if index >= 3:  # past the workers' start-up
                waits.append(ready - start)
                steps.append(time.perf_counter() - ready)
        return statistics.median(waits), statistics.median(steps)

    loops = {
        f"simulate_on=workers, num_workers={args.workers}": build(
            config, args.downsample, "workers", args.workers
        )[1],
        "simulate_on=workers, num_workers=0": build(config, args.downsample, "workers", 0)[1],
        "simulate_on=device, num_workers=0": build(config, args.downsample, "device", 0)[1],
    }
    results = {name: loop(dm) for name, dm in loops.items()}

    x = clean[0]["x"]
    physics = workers_dm.physics
    print(
        f"{Path(args.config).name}: {physics.describe()}, images {tuple(x.shape[-2:])}, "
        f"{example['y'].shape[1]} coils, measurements {tuple(example['y'].shape[1:])}, batch "
        f"{batch_size}, device {device}, torch threads {torch.get_num_threads()}"
    )
    step_ms = statistics.median(step_times) * 1e3
    print("\n| measured | median ms | share of the training step |")
    print("|---|---:|---:|")
    rows = {
        "simulate one item (one worker's work)": statistics.median(item_times) * 1e3,
        f"simulate one batch on {device.type}": statistics.median(device_times) * 1e3,
        "training step": step_ms,
    }
    for name, ms in rows.items():
        print(f"| {name} | {ms:.1f} | {ms / step_ms:.0%} |")
    print(f"\n| training loop, {args.steps} steps | wait for data ms | step ms | wait / step |")
    print("|---|---:|---:|---:|")
    for name, (wait, step_s) in results.items():
        print(f"| {name} | {wait * 1e3:.1f} | {step_s * 1e3:.1f} | {wait / step_s:.1%} |")


if __name__ == "__main__":
    main()
