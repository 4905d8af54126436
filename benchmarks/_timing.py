"""Shared timing helper for the benchmarks: warm-up, interleaved repeats, median."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_interleaved(
    candidates: dict[str, Callable[[], object]],
    device: torch.device,
    repeats: int = 10,
    warmup: int = 2,
) -> dict[str, float]:
    """Median seconds per call of each candidate; calls alternate between candidates so that
    load on a shared machine hits them alike."""
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    _sync(device)
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


def print_table(title: str, times: dict[str, float], reference: str) -> None:
    print(f"\n{title}")
    print(f"| {'implementation':<44} | {'median ms':>10} | {'ratio to ' + reference:>24} |")
    print(f"|{'-' * 46}|{'-' * 12}|{'-' * 26}|")
    for name, seconds in times.items():
        ratio = seconds / times[reference]
        print(f"| {name:<44} | {seconds * 1e3:>10.2f} | {ratio:>24.2f} |")
