"""GRAPPA: deepinv-lab's ``grappa`` (torch, batched over sampling patterns) against pygrappa
(numpy: ``grappa`` loops over the missing points in Python, ``mdgrappa`` trains its kernels in
Cython), on simulated coil k-space (birdcage coils times an elliptical phantom, plus noise at
1e-5 of the k-space maximum) with a fastMRI random column mask.

    OMP_NUM_THREADS=2 python benchmarks/bench_grappa.py [--mdgrappa]
        [--coils 15 --size 640 368 --acceleration 4 --center-fraction 0.08 --kernel 5 5
         --regularization 0.01 --dtype complex64 --batch 1 --repeats 3 --threads 2]

All use the same kernel and the same Tikhonov convention (``lamda * ||S^H S||_F / n``).
pygrappa calibrates on every window of its zero-padded ``calib`` block, ours (as timed) on the
windows inside the ACS columns; ``rel diff`` compares each pygrappa function with ours given that
zero-padded block as ``acs`` (the same equations). ``nmse`` is against the fully sampled
k-space. ``ours cuda`` appears when CUDA is available. pygrappa takes one slice per call, so a
batch is a loop over its slices. ``mdgrappa`` (``--mdgrappa``) takes minutes at full size.

pygrappa's ``grappa`` locates the missing points of a pattern with ``np.unravel_index`` on an
``(N, 1)`` array, which NumPy 2.4.6 gets wrong past about 8200 entries: on large images it leaves
points of the commonest patterns unfilled (its ``rel diff`` and ``nmse`` show it); ``mdgrappa``
is not affected.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _timing import time_interleaved

from deepinv_lab.functional import fft2c
from deepinv_lab.systems.coils import birdcage_maps
from deepinv_lab.systems.grappa import grappa
from deepinv_lab.systems.sampling import RandomMaskFunc, to_column_mask

DTYPES = {"complex64": torch.complex64, "complex128": torch.complex128}


def simulate(batch: int, coils: int, size: tuple[int, int], dtype: torch.dtype) -> torch.Tensor:
    """Fully sampled coil k-space ``(B, coils, H, W)``: birdcage maps times two ellipses."""
    height, width = size
    maps = birdcage_maps(coils, size, dtype=torch.complex128)
    rows = (torch.arange(height, dtype=torch.float64) - height / 2) / (height / 2)
    cols = (torch.arange(width, dtype=torch.float64) - width / 2) / (width / 2)
    yy, xx = torch.meshgrid(rows, cols, indexing="ij")
    image = ((xx / 0.7) ** 2 + (yy / 0.8) ** 2 < 1).double()
    image = image * (1 + 0.5 * ((xx - 0.2) ** 2 + (yy + 0.1) ** 2 < 0.1).double())
    kspace = fft2c(maps * image)
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn((batch, *kspace.shape), dtype=torch.complex128, generator=generator)
    return (kspace + 1e-5 * kspace.abs().max() * noise).to(dtype)


def nmse(estimate: torch.Tensor, reference: torch.Tensor) -> float:
    estimate, reference = estimate.cpu().to(torch.complex128), reference.to(torch.complex128)
    return float((estimate - reference).norm() ** 2 / reference.norm() ** 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--coils", type=int, default=15)
    parser.add_argument("--size", type=int, nargs=2, default=(640, 368))
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--acceleration", type=float, default=4)
    parser.add_argument("--center-fraction", type=float, default=0.08)
    parser.add_argument("--kernel", type=int, nargs=2, default=(5, 5))
    parser.add_argument("--regularization", type=float, default=0.01)
    parser.add_argument("--dtype", default="complex64", choices=list(DTYPES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--no-pygrappa", action="store_true", help="time ours only")
    parser.add_argument("--mdgrappa", action="store_true", help="also time pygrappa.mdgrappa")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dtype, kernel = DTYPES[args.dtype], tuple(args.kernel)
    height, width = args.size

    full = simulate(args.batch, args.coils, (height, width), dtype)
    mask_func = RandomMaskFunc([args.center_fraction], [args.acceleration])
    sampled = [mask_func((1, height, width, 2), seed=(7, b)) for b in range(args.batch)]
    masks = torch.stack([to_column_mask(s.mask) for s in sampled]).to(full.real.dtype)
    num_low = torch.tensor([s.num_low_frequencies for s in sampled])
    measured = full * masks

    def ours(device: torch.device):
        data = measured.to(device), masks.to(device), num_low.to(device)

        def run() -> torch.Tensor:
            return grappa(*data, kernel, args.regularization)

        return run

    candidates = {"ours cpu": ours(torch.device("cpu"))}
    if torch.cuda.is_available():
        candidates["ours cuda"] = ours(torch.device("cuda"))
    outputs = {name: fn() for name, fn in candidates.items()}
    row = {name: nmse(out, full) for name, out in outputs.items()}

    references = {}
    if not args.no_pygrappa:
        try:
            import pygrappa

            references["pygrappa.grappa"] = pygrappa.grappa
            if args.mdgrappa:
                references["pygrappa.mdgrappa"] = pygrappa.mdgrappa
        except ImportError:
            print("pygrappa not installed: its rows are skipped")
    rel_diff = {}
    if references:
        widths = num_low.tolist()
        calibs = [measured[b, ..., (width - n + 1) // 2 :][..., :n] for b, n in enumerate(widths)]
        pads = (kernel[1] // 2, kernel[1] // 2, kernel[0] // 2, kernel[0] // 2)
        same_equations = torch.stack(
            [
                grappa(measured[b], masks[b], None, kernel, args.regularization,
                       acs=torch.nn.functional.pad(calibs[b], pads))
                for b in range(args.batch)
            ]
        )  # fmt: skip
        slices = [
            (measured[b].permute(1, 2, 0).numpy(), calibs[b].permute(1, 2, 0).numpy())
            for b in range(args.batch)
        ]
        for name, function in references.items():

            def reference(function=function) -> np.ndarray:
                return np.stack(
                    [
                        function(k, c, kernel_size=kernel, lamda=args.regularization)
                        for k, c in slices
                    ]
                )

            start = time.perf_counter()
            expected = torch.from_numpy(reference()).permute(0, 3, 1, 2)
            print(f"{name} first call: {time.perf_counter() - start:.1f} s", flush=True)
            candidates[name] = reference
            row[name] = nmse(expected, full)
            rel_diff[name] = float((same_equations - expected).norm() / expected.norm())

    times = time_interleaved(candidates, torch.device("cpu"), repeats=args.repeats, warmup=0)
    if "ours cuda" in times:  # the CPU-synchronising timer does not wait for the GPU
        times["ours cuda"] = time_interleaved(
            {"ours cuda": candidates["ours cuda"]}, torch.device("cuda"), repeats=args.repeats
        )["ours cuda"]

    print(
        f"\nGRAPPA, {args.batch} x {args.coils} coils x {height} x {width} {args.dtype}, random "
        f"column mask R={args.acceleration:g} with {args.center_fraction:g} centre "
        f"({num_low.tolist()} ACS columns), kernel {kernel[0]}x{kernel[1]}, lamda "
        f"{args.regularization:g}, {torch.get_num_threads()} CPU threads, median of "
        f"{args.repeats}"
    )
    print("| implementation | ms | ratio to ours cpu | nmse | rel diff (same equations) |")
    print("|---|---:|---:|---:|---:|")
    for name, seconds in times.items():
        diff = f"{rel_diff[name]:.1e}" if name in rel_diff else "-"
        ratio = seconds / times["ours cpu"]
        print(f"| {name} | {seconds * 1e3:.0f} | {ratio:.1f} | {row[name]:.2e} | {diff} |")


if __name__ == "__main__":
    main()
