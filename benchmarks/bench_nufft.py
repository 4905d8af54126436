"""Multicoil non-Cartesian MRI: deepinv-lab's MultiCoilNUFFT on its two backends (FINUFFT /
cuFINUFFT, torchkbnufft) against SigPy's ``sigpy.mri.linop.Sense(maps, coord=...)`` (numba), side
by side in one run: forward, adjoint, ``A^H A`` (ours: adjoint(forward) and the Toeplitz normal;
SigPy: ``A.H * A`` and its own Toeplitz NUFFT normal), the Toeplitz kernel's build time, what
planning costs, and the accuracy of each.

    OMP_NUM_THREADS=2 python benchmarks/bench_nufft.py [--device cuda]
        [--size 256 --coils 8 --spokes 402 --readout 512 --repeats 10] [--tolerance 1e-6]
        [--libgomp-spin]

Golden-angle radial, full spokes, ``readout`` samples per spoke (512 = 2x readout oversampling for
256 x 256), complex64. SigPy always runs on the CPU (numpy); it computes one image, so the batch
is 1. With ``--device cuda`` the ``finufft`` backend is cuFINUFFT (when installed) and both
backends run on the GPU.

The script sets ``OMP_WAIT_POLICY=PASSIVE`` before torch loads (unless ``--libgomp-spin`` or the
variable is already set): torchkbnufft runs its CPU interpolation in ``torch.jit.fork`` tasks,
each with its own OpenMP team, and libgomp's default spin-waiting of idle teams then starves the
other threads. On 2 cores this made its adjoint 14x slower (6.7 s instead of 0.47 s).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default=None, help="cuda if available, else cpu")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--coils", type=int, default=8)
    parser.add_argument("--spokes", type=int, default=402)
    parser.add_argument("--readout", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--tolerance", type=float, default=1e-6, help="FINUFFT's tolerance")
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
    from _timing import _sync, print_table, time_interleaved

    from deepinv_lab.systems.coils import birdcage_maps
    from deepinv_lab.systems.nufft import MultiCoilNUFFT
    from deepinv_lab.systems.trajectories import radial_trajectory

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    n = args.size
    trajectory = radial_trajectory(args.spokes, args.readout).to(device)
    maps = birdcage_maps(args.coils, (n, n))[None].to(device)
    x = torch.randn(1, 1, n, n, dtype=torch.complex64, device=device)

    def timed(fn) -> float:
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        return time.perf_counter() - start

    systems, kernel_seconds, first_call = {}, {}, {}
    for backend in ("finufft", "torchkbnufft"):
        system = MultiCoilNUFFT(trajectory, maps, backend=backend, tolerance=args.tolerance)
        first_call[backend] = timed(lambda s=system: s(x))  # plans / tables built here
        kernel_seconds[backend] = timed(system.nufft.compute_toeplitz_kernel)
        system.N(x)  # computes and caches the kernel
        systems[backend] = system
    fast, kb = systems["finufft"], systems["torchkbnufft"]
    library = fast.nufft.library

    # What planning costs: FINUFFT's makeplan + setpts for this trajectory and 8 transforms.
    plan_backend = fast.nufft.backend_for()
    plan_times = []
    for _ in range(5):
        plan_backend._plans.clear()
        plan_times.append(timed(lambda: plan_backend.plans(fast.trajectory, args.coils)))
    plan_seconds = statistics.median(plan_times)

    # SigPy: coordinates in samples, (K, 2), last axis (y, x) like our rows (ky, kx).
    coord = (trajectory.cpu().double() * n / (2 * math.pi)).T.numpy().astype(np.float32)
    maps_np = maps[0].cpu().numpy()
    sense = sigpy.mri.linop.Sense(maps_np, coord=coord)
    coil_op = sigpy.linop.Multiply((n, n), maps_np)
    toeplitz = sigpy.linop.NUFFT(coil_op.oshape, coord, toeplitz=True)
    sense_toeplitz = coil_op.H * toeplitz.N * coil_op
    sense_normal = sense.H * sense
    x_np = x[0, 0].cpu().numpy()
    y = fast(x)
    y_np = y[0].cpu().numpy()

    fast_name, kb_name = f"deepinv-lab {library}", "deepinv-lab torchkbnufft"
    candidates = {
        "SigPy Sense forward": lambda: sense(x_np),
        f"{fast_name} forward": lambda: fast(x),
        f"{kb_name} forward": lambda: kb(x),
        "SigPy Sense adjoint": lambda: sense.H(y_np),
        f"{fast_name} adjoint": lambda: fast.adjoint(y),
        f"{kb_name} adjoint": lambda: kb.adjoint(y),
        "SigPy Sense A.H * A": lambda: sense_normal(x_np),
        "SigPy S^H NUFFT(toeplitz=True).N S": lambda: sense_toeplitz(x_np),
        f"{fast_name} adjoint(forward(x))": lambda: fast.adjoint(fast(x)),
        f"{kb_name} adjoint(forward(x))": lambda: kb.adjoint(kb(x)),
        "deepinv-lab Toeplitz normal .N": lambda: fast.N(x),
    }
    with torch.no_grad():
        times = time_interleaved(candidates, device, repeats=args.repeats)

    samples = args.spokes * args.readout
    print(
        f"\nmulticoil radial NUFFT: image {n}x{n}, {args.coils} coils, {args.spokes} golden-angle "
        f"spokes x {args.readout} = {samples} samples per coil, complex64, device {device}, "
        f"torch threads {torch.get_num_threads()}, FINUFFT tolerance {args.tolerance:g}, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}"
    )
    tables = {
        "forward": ["SigPy Sense forward", f"{fast_name} forward", f"{kb_name} forward"],
        "adjoint": ["SigPy Sense adjoint", f"{fast_name} adjoint", f"{kb_name} adjoint"],
        "normal A^H A": [
            "SigPy Sense A.H * A",
            "SigPy S^H NUFFT(toeplitz=True).N S",
            f"{fast_name} adjoint(forward(x))",
            f"{kb_name} adjoint(forward(x))",
            "deepinv-lab Toeplitz normal .N",
        ],
    }
    for title, names in tables.items():
        print_table(title, {name: times[name] for name in names}, reference=names[0])

    forward = times[f"{fast_name} forward"]
    print(
        f"\n{library} vs torchkbnufft: forward {times[f'{kb_name} forward'] / forward:.1f}x, "
        f"adjoint {times[f'{kb_name} adjoint'] / times[f'{fast_name} adjoint']:.1f}x faster; "
        f"vs SigPy: forward {times['SigPy Sense forward'] / forward:.1f}x, adjoint "
        f"{times['SigPy Sense adjoint'] / times[f'{fast_name} adjoint']:.1f}x faster"
    )
    normal = times["deepinv-lab Toeplitz normal .N"]
    for name in (fast_name, kb_name):
        ratio = times[f"{name} adjoint(forward(x))"] / normal
        print(f"Toeplitz normal is {ratio:.1f}x faster than {name} adjoint(forward(x))")
    # CG calls the normal operator back to back; interleaved with NUFFT calls, the Toeplitz FFTs
    # run after FINUFFT's own OpenMP pool (a second libgomp) and measured up to 2x slower.
    with torch.no_grad():
        alone = {
            name: time_interleaved({name: fn}, device, repeats=args.repeats)[name]
            for name, fn in (
                ("adjoint(forward(x))", lambda: fast.adjoint(fast(x))),
                ("Toeplitz .N", lambda: fast.N(x)),
            )
        }
    pair, toeplitz_alone = alone["adjoint(forward(x))"], alone["Toeplitz .N"]
    print(
        f"back to back, as in CG: {fast_name} adjoint(forward(x)) {pair * 1e3:.1f} ms, "
        f"Toeplitz .N {toeplitz_alone * 1e3:.1f} ms: {pair / toeplitz_alone:.1f}x faster"
    )
    print(
        f"planning ({library}, {args.coils} transforms): {plan_seconds * 1e3:.1f} ms "
        f"({plan_seconds / forward:.0%} of a forward); first forward call "
        f"{first_call['finufft'] * 1e3:.0f} ms ({library}), "
        f"{first_call['torchkbnufft'] * 1e3:.0f} ms (torchkbnufft)"
    )
    print(
        f"Toeplitz kernel (computed once, on first .N): {kernel_seconds['finufft'] * 1e3:.0f} ms "
        f"({library}, double precision), {kernel_seconds['torchkbnufft'] * 1e3:.0f} ms "
        "(torchkbnufft)"
    )

    # Accuracy: against SigPy at oversampling 2 and width 8 in double precision (1.4e-7 from
    # the exact sum on tests/test_nufft.py's problem), and the Toeplitz normal against each
    # backend's adjoint(forward(x)).
    def rel(a, b) -> float:
        return float(np.linalg.norm(a - b) / np.linalg.norm(b))

    with torch.no_grad():
        coord64 = (trajectory.cpu().double() * n / (2 * math.pi)).T.numpy()
        reference = sigpy.mri.linop.Sense(maps_np.astype(np.complex128), coord=coord64)
        accurate = sigpy.nufft(
            maps_np.astype(np.complex128) * x_np.astype(np.complex128),
            coord64,
            oversamp=2,
            width=8,
        )
        default = reference(x_np.astype(np.complex128))
        for name, system in ((library, fast), ("torchkbnufft", kb)):
            ours = system(x)[0].cpu().numpy()
            exact_normal = system.adjoint(system(x))
            toeplitz_error = float((system.N(x) - exact_normal).norm() / exact_normal.norm())
            print(
                f"{name}: forward vs SigPy (oversamp 2, width 8, double) "
                f"{rel(ours, accurate):.1e}; "
                f"Toeplitz normal vs its adjoint(forward) {toeplitz_error:.1e}"
            )
        print(f"SigPy's default forward vs the same reference: {rel(default, accurate):.1e}")


if __name__ == "__main__":
    main()
