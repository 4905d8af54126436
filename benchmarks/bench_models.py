"""Forward and training-step (MSE loss, backward, Adam) time of every Model block on a
real ``(1, C, S, S)`` input, with peak memory on CUDA, and RCAN with vs without checkpoint_groups.

    OMP_NUM_THREADS=2 python benchmarks/bench_models.py [--device cuda] [--size 256] [--repeats 5]

Models are the subclasses of ``Model`` in ``deepinv_lab.models`` (``deepinv_lab.discovery``);
those whose ``example()`` input is complex are skipped. A Model is built from
:data:`BENCH_CONFIGS` where it has an entry, otherwise its ``example()`` instance is used as is;
the input has the example's channel count and ``--size`` pixels a side. A Model that fails
prints its error in its row instead of stopping the run.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from _timing import time_interleaved
from torch import nn

from deepinv_lab.discovery import subclasses
from deepinv_lab.models import Model

# Benchmark sizes per Model (constructor kwargs). RCAN: the paper's 64-channel x4 model with
# 10 groups x 20 blocks on CUDA; on CPU 2 groups x 4 blocks at x2 so a run takes a minute.
# The published default of each Model (same on both devices) unless its example() suits.
_DEFAULTS = {
    "Unet": dict(in_chans=1, out_chans=1, chans=32, num_pool_layers=4),
    "BiasFreeUnet": dict(in_chans=1, out_chans=1, chans=32, num_pool_layers=4),
    "DnCNN": dict(),
    "BiasFreeDnCNN": dict(),
    "ResNetDenoiser": dict(),
    "SRGANGenerator": dict(num_blocks=1, variant="edsrgan"),  # the micro-CT configuration
    "SRGANDiscriminator": dict(input_size=192),
}
BENCH_CONFIGS: dict[str, dict[str, dict]] = {
    "cuda": {**_DEFAULTS, "RCAN": dict()},
    "cpu": {**_DEFAULTS, "RCAN": dict(num_groups=2, num_blocks=4, scale=2)},
}
# Input side per Model where --size does not suit it (RCAN x4 on 256^2 gives 1024^2 outputs; the
# micro-CT SRGAN generator upsamples 64^2 to 256^2; the discriminator takes 192^2 HR crops).
_SIZES = {"SRGANGenerator": 64, "SRGANDiscriminator": 192}
BENCH_SIZES: dict[str, dict[str, int]] = {
    "cuda": {**_SIZES, "RCAN": 128},
    "cpu": {**_SIZES, "RCAN": 64},
}


def _build(
    cls: type[Model], device_type: str, size: int, **extra
) -> tuple[nn.Module, torch.Tensor]:
    name = cls.__name__
    example_model, example_input = cls.example()
    config = BENCH_CONFIGS[device_type].get(name)
    model = cls(**config, **extra) if config is not None else example_model
    side = BENCH_SIZES[device_type].get(name, size)
    channels = getattr(model, "in_chans", example_input.shape[1])
    return model, torch.randn(1, channels, side, side)


def _steps(model: nn.Module, x: torch.Tensor) -> tuple[Callable[[], object], Callable[[], object]]:
    with torch.no_grad():
        target = torch.randn_like(model(x))
    optimizer = torch.optim.Adam(p for p in model.parameters() if p.requires_grad)

    def forward() -> object:
        with torch.no_grad():
            return model(x)

    def train_step() -> object:
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.mse_loss(model(x), target)
        loss.backward()
        optimizer.step()
        return loss

    return forward, train_step


def _peak_train_bytes(step: Callable[[], object], device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    step()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device)


def _row(label: str, cells: list[str]) -> str:
    return "| " + " | ".join([label, *cells]) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = torch.device(args.device)

    runs: list[tuple[str, type[Model], dict]] = []  # (row label, model class, extra kwargs)
    for cls in sorted(subclasses(Model, "deepinv_lab.models"), key=lambda c: c.__name__):
        runs.append((cls.__name__, cls, {}))
        if cls.__name__ == "RCAN":
            runs.append(("RCAN checkpoint_groups", cls, dict(checkpoint_groups=True)))

    print(f"\ndevice {device}, threads {torch.get_num_threads()}, repeats {args.repeats}\n")
    print(_row("model", ["input", "params", "forward ms", "train step ms", "peak train MiB"]))
    print("|" + "---|" * 6)
    peaks: dict[str, float | None] = {}
    times: dict[str, float] = {}
    for label, cls, extra in runs:
        try:
            if cls.example()[1].is_complex():
                print(_row(label, ["complex input: skipped", "", "", "", ""]))
                continue
            torch.manual_seed(0)
            model, x = _build(cls, device.type, args.size, **extra)
            model, x = model.to(device).train(), x.to(device)
            forward, train_step = _steps(model, x)
            measured = time_interleaved(
                {"forward": forward, "train": train_step}, device, repeats=args.repeats, warmup=1
            )
            peak = _peak_train_bytes(train_step, device)
            peaks[label], times[label] = peak, measured["train"]
            params = sum(p.numel() for p in model.parameters())
            cells = [
                "x".join(map(str, x.shape)),
                f"{params:,}",
                f"{measured['forward'] * 1e3:.1f}",
                f"{measured['train'] * 1e3:.1f}",
                "n/a (CPU)" if peak is None else f"{peak / 2**20:.0f}",
            ]
        except Exception as error:  # noqa: BLE001 - one failing model must not hide the rest
            cells = [f"error: {type(error).__name__}: {error}"[:120], "", "", "", ""]
        print(_row(label, cells))

    plain, ckpt = "RCAN", "RCAN checkpoint_groups"
    if plain in times and ckpt in times:
        print(
            f"\nRCAN checkpoint_groups / plain: train-step time {times[ckpt] / times[plain]:.2f}x",
            end="",
        )
        if peaks[plain] and peaks[ckpt]:
            print(f", peak memory {peaks[ckpt] / peaks[plain]:.2f}x", end="")
        print()


if __name__ == "__main__":
    main()
