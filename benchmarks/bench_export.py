"""Exported VarNet vs eager on the CPU: export time, file size, max relative difference and
latency of the torch.export (.pt2) and ONNX (onnxruntime) files of a small random VarNet.

    OMP_NUM_THREADS=1 python benchmarks/bench_export.py [--coils 8 --size 320 --cascades 4]

Threads: torch and onnxruntime both use ``OMP_NUM_THREADS`` (default 1), set before torch starts.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
from _timing import time_interleaved  # noqa: E402

from deepinv_lab.export import (  # noqa: E402
    KSpaceRecon,
    OnnxRecon,
    export_recon,
    load_exported,
    relative_difference,
)
from deepinv_lab.recons import VarNet  # noqa: E402


def _call(function, inputs):
    return lambda: function(*inputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--coils", type=int, default=8)
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--cascades", type=int, default=4)
    parser.add_argument("--chans", type=int, default=8)
    parser.add_argument("--pools", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-onnx", action="store_true")
    options = parser.parse_args()
    threads = int(os.environ["OMP_NUM_THREADS"])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    recon = VarNet(
        num_cascades=options.cascades,
        chans=options.chans,
        num_pool_layers=options.pools,
        sens_chans=4,
        sens_num_pool_layers=options.pools,
    ).eval()
    shape = (options.coils, options.size, options.size)
    print(
        f"VarNet({options.cascades} cascades, chans {options.chans}, pools {options.pools}; "
        f"{sum(p.numel() for p in recon.parameters()):,} parameters), k-space 1 x "
        f"{' x '.join(map(str, shape))}, OMP_NUM_THREADS={threads}, torch {torch.__version__}"
    )
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        formats = ["torch_export"] if options.no_onnx else ["torch_export", "onnx"]
        for fmt in formats:
            wrapper = KSpaceRecon(recon, real_view=fmt == "onnx")
            inputs = wrapper.example_inputs(shape, batch_size=1)
            path = Path(folder) / f"varnet.{'pt2' if fmt == 'torch_export' else 'onnx'}"
            result = export_recon(wrapper, path, fmt, inputs)
            exported = OnnxRecon(path, threads=threads) if fmt == "onnx" else load_exported(path)
            check = wrapper.example_inputs(shape, batch_size=1, seed=1)
            with torch.no_grad():
                difference = relative_difference(exported(*check), wrapper(*check))
                times = time_interleaved(
                    {"eager": _call(wrapper, check), "exported": _call(exported, check)},
                    torch.device("cpu"),
                    repeats=options.repeats,
                    warmup=1,
                )
            rows.append(
                (fmt, result.capture, result.seconds, path.stat().st_size, difference, times)
            )
    print(
        "\n| format | capture | export s | file MiB | max rel. diff | eager ms | exported ms |"
        "\n|---|---|---|---|---|---|---|"
    )
    for fmt, capture, seconds, size, difference, times in rows:
        print(
            f"| {fmt} | {capture} | {seconds:.1f} | {size / 2**20:.2f} | {difference:.1e} | "
            f"{times['eager'] * 1e3:.0f} | {times['exported'] * 1e3:.0f} |"
        )


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"\ntotal {time.perf_counter() - start:.0f} s")
