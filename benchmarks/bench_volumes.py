"""Volumes: a 3D super-resolution training step with and without gradient checkpointing (time and
peak memory), and whole-volume inference by overlapping patches on a 256^3 volume.

1. Training step (forward, backward, Adam step) of a 3D RCAN larger than
   ``configs/rcan3d_sr.json``'s (32 channels, 4 groups x 4 blocks, x2, 32^3 -> 64^3 patches,
   batch 2), with ``checkpoint_groups`` off and on (the groups run at the LR size). Each
   variant runs in its own process; peak memory is the process's peak resident memory (CPU) or
   ``torch.cuda.max_memory_allocated`` (CUDA) during the steps, above what it held before them.
2. Patch inference of a 3D DnCNN (4 layers x 8 channels) on a 256^3 volume: the whole volume in
   one forward against ``sliding_window`` with 64^3 and 96^3 patches (overlap 16, Gaussian and
   linear blending); throughput in voxels per second.

    OMP_NUM_THREADS=2 python benchmarks/bench_volumes.py [--device cpu] [--size 256]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from deepinv_lab.functional.patches import sliding_window
from deepinv_lab.models import RCAN, DnCNN


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def training_step(checkpoint: bool, device: str, steps: int) -> dict[str, float]:
    """Median seconds per step and peak memory (MB) above the memory held before the steps."""
    torch.manual_seed(0)
    model = RCAN(1, 1, chans=32, num_groups=4, num_blocks=4, reduction=8, scale=2,
                 checkpoint_groups=checkpoint, spatial_dims=3).to(device)  # fmt: skip
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    lr = torch.rand(2, 1, 32, 32, 32, device=device)
    hr = torch.rand(2, 1, 64, 64, 64, device=device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.l1_loss(model(lr), hr).backward()
        optimizer.step()

    # the peak over all steps above what the process held before the first (model, data, and
    # from the first step on Adam's state, which is part of what a step holds)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        before = _rss_bytes()
    step()  # warm-up, not timed
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() - before
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    return {"seconds": sorted(times)[len(times) // 2], "peak_mb": peak / 2**20}


def patch_inference(device: str, size: int) -> None:
    torch.manual_seed(0)
    model = DnCNN(1, num_layers=4, chans=8, spatial_dims=3).to(device).eval()
    volume = torch.rand(1, 1, size, size, size, device=device)
    voxels = size**3
    candidates = {"whole volume, one forward": lambda: model(volume)}
    for patch in (64, 96):
        for blending in ("gaussian", "linear"):
            candidates[f"patches {patch}^3, overlap 16, {blending}"] = lambda p=patch, b=blending: (
                sliding_window(model, volume, p, 16, blending=b, batch_size=4)
            )
    print(f"\nPatch inference, 3D DnCNN (4 layers x 8 ch), {size}^3 volume, {device}")
    print(f"| {'method':<40} | {'seconds':>8} | {'Mvoxel/s':>9} | {'ratio to whole':>14} |")
    print(f"|{'-' * 42}|{'-' * 10}|{'-' * 11}|{'-' * 16}|")
    times = {}
    with torch.no_grad():
        model(volume[..., :64, :64, :64])  # warm-up
        for name, fn in candidates.items():
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            fn()
            if device == "cuda":
                torch.cuda.synchronize()
            times[name] = time.perf_counter() - start
    whole = times["whole volume, one forward"]
    for name, seconds in times.items():
        print(f"| {name:<40} | {seconds:>8.2f} | {voxels / seconds / 1e6:>9.2f} | "
              f"{seconds / whole:>14.2f} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--_step", choices=["plain", "checkpointed"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._step:  # one variant in a fresh process, so that peak memory is its own
        result = training_step(args._step == "checkpointed", args.device, args.steps)
        print(json.dumps(result))
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")
    print("\n3D RCAN training step (32 ch, 4 x 4 blocks, x2, 32^3 -> 64^3, batch 2)")
    print(f"| {'variant':<24} | {'s / step':>9} | {'peak MB':>9} | {'time ratio':>10} |")
    print(f"|{'-' * 26}|{'-' * 11}|{'-' * 11}|{'-' * 12}|")
    results = {}
    for variant in ("plain", "checkpointed"):
        command = [sys.executable, __file__, "--_step", variant, "--device", args.device,
                   "--steps", str(args.steps)]  # fmt: skip
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        results[variant] = json.loads(output.strip().splitlines()[-1])
    for variant, result in results.items():
        ratio = result["seconds"] / results["plain"]["seconds"]
        print(f"| {variant:<24} | {result['seconds']:>9.3f} | {result['peak_mb']:>9.0f} | "
              f"{ratio:>10.2f} |")  # fmt: skip
    patch_inference(args.device, args.size)


if __name__ == "__main__":
    main()
