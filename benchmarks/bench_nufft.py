"""Multicoil non-Cartesian MRI: deepinv-lab's MultiCoilNUFFT (torchkbnufft) against SigPy's
``sigpy.mri.linop.Sense(maps, coord=...)`` (numba), side by side in one run: forward, adjoint,
normal ``A^H A`` (ours: adjoint(forward) and the Toeplitz normal; SigPy: ``A.H * A`` and its own
Toeplitz NUFFT normal).

    OMP_NUM_THREADS=2 python benchmarks/bench_nufft.py [--device cuda]
        [--size 256 --coils 8 --spokes 402 --readout 512 --repeats 10] [--libgomp-spin]

Golden-angle radial, full spokes, ``readout`` samples per spoke (512 = 2x readout oversampling for
256 x 256). SigPy always runs on the CPU (numpy); it computes one image, so the batch is 1.

The script sets ``OMP_WAIT_POLICY=PASSIVE`` before torch loads (unless ``--libgomp-spin`` or the
variable is already set): torchkbnufft runs its CPU interpolation in ``torch.jit.fork`` tasks,
each with its own OpenMP team, and libgomp's default spin-waiting of idle teams then starves the
other threads. On 2 cores this made our adjoint 14x slower (6.7 s instead of 0.47 s).
"""

from __future__ import annotations

import argparse
import math
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default=None, help="cuda if available, else cpu")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--coils", type=int, default=8)
    parser.add_argument("--spokes", type=int, default=402)
    parser.add_argument("--readout", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument(
        "--libgomp-spin", action="store_true", help="keep libgomp's default spin-waiting"
    )
    args = parser.parse_args()
    if not args.libgomp_spin:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    import numpy as np
    import sigpy
    import sigpy.mri
    import torch
    from _timing import print_table, time_interleaved

    from deepinv_lab.systems.coils import birdcage_maps
    from deepinv_lab.systems.nufft import MultiCoilNUFFT
    from deepinv_lab.systems.trajectories import radial_trajectory

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    n = args.size
    trajectory = radial_trajectory(args.spokes, args.readout).to(device)
    maps = birdcage_maps(args.coils, (n, n))[None].to(device)
    x = torch.randn(1, 1, n, n, dtype=torch.complex64, device=device)
    ours = MultiCoilNUFFT(trajectory, maps)
    start = time.perf_counter()
    ours.nufft.compute_toeplitz_kernel()  # what the first call of ours.N does, then caches
    kernel_seconds = time.perf_counter() - start
    ours.N(x)

    # SigPy: coordinates in samples, (K, 2), last axis (y, x) like our rows (ky, kx).
    coord = (trajectory.cpu().double() * n / (2 * math.pi)).T.numpy().astype(np.float32)
    maps_np = maps[0].cpu().numpy()
    sense = sigpy.mri.linop.Sense(maps_np, coord=coord)
    coil_op = sigpy.linop.Multiply((n, n), maps_np)
    toeplitz = sigpy.linop.NUFFT(coil_op.oshape, coord, toeplitz=True)
    sense_toeplitz = coil_op.H * toeplitz.N * coil_op
    x_np = x[0, 0].cpu().numpy()
    y = ours(x)
    y_np = y[0].cpu().numpy()
    sense_normal = sense.H * sense

    candidates = {
        "SigPy Sense forward": lambda: sense(x_np),
        "deepinv-lab MultiCoilNUFFT forward": lambda: ours(x),
        "SigPy Sense adjoint": lambda: sense.H(y_np),
        "deepinv-lab MultiCoilNUFFT adjoint": lambda: ours.adjoint(y),
        "SigPy Sense A.H * A": lambda: sense_normal(x_np),
        "SigPy S^H NUFFT(toeplitz=True).N S": lambda: sense_toeplitz(x_np),
        "deepinv-lab adjoint(forward(x))": lambda: ours.adjoint(ours(x)),
        "deepinv-lab Toeplitz normal .N": lambda: ours.N(x),
    }
    times = time_interleaved(candidates, device, repeats=args.repeats)

    samples = args.spokes * args.readout
    print(
        f"\nmulticoil radial NUFFT: image {n}x{n}, {args.coils} coils, {args.spokes} golden-angle "
        f"spokes x {args.readout} = {samples} samples per coil, complex64, device {device}, "
        f"torch threads {torch.get_num_threads()}, OMP_WAIT_POLICY="
        f"{os.environ.get('OMP_WAIT_POLICY', '(unset)')}"
    )
    print(f"Toeplitz kernel (computed once, on first .N): {kernel_seconds * 1e3:.0f} ms")
    tables = {
        "forward": ["SigPy Sense forward", "deepinv-lab MultiCoilNUFFT forward"],
        "adjoint": ["SigPy Sense adjoint", "deepinv-lab MultiCoilNUFFT adjoint"],
        "normal A^H A": [
            "SigPy Sense A.H * A",
            "SigPy S^H NUFFT(toeplitz=True).N S",
            "deepinv-lab adjoint(forward(x))",
            "deepinv-lab Toeplitz normal .N",
        ],
    }
    for title, names in tables.items():
        print_table(title, {name: times[name] for name in names}, reference=names[0])
    speedup = times["deepinv-lab adjoint(forward(x))"] / times["deepinv-lab Toeplitz normal .N"]
    print(f"\nToeplitz normal is {speedup:.1f}x faster than adjoint(forward(x))")

    with torch.no_grad():
        ours_y = ours(x)[0].cpu().numpy()
        exact = ours.adjoint(ours(x))
        toeplitz_error = float((ours.N(x) - exact).norm() / exact.norm())
    sigpy_y = sense(x_np)
    forward_error = np.linalg.norm(ours_y - sigpy_y) / np.linalg.norm(sigpy_y)
    print(
        f"relative differences: forward vs SigPy {forward_error:.1e}, "
        f"Toeplitz normal vs adjoint(forward) {toeplitz_error:.1e}"
    )


if __name__ == "__main__":
    main()
