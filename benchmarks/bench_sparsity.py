"""Sparsity Recons: time to the same objective, deepinv-lab's TVRecon and L1WaveletRecon (torch,
batched) against SigPy's ``sigpy.mri.app.TotalVariationRecon`` and ``sigpy.mri.app.L1WaveletRecon``
(numpy, one slice at a time), on validation slices of the built-in brain MRI
(``SimulatedBrainMRIDataModule``: 224 x 192, 8 coils, 4x random columns with 8% centre).

    OMP_NUM_THREADS=1 python benchmarks/bench_sparsity.py [--iterations 100 --lamda 0.002
        --slices 1 --downsample 1 --repeats 3 --reference-iterations 1000 --dtype complex64]

SigPy runs ``--iterations`` iterations; then ours runs the fewest iterations ``k`` (found by
bisection over separate solves, untimed) that reach SigPy's accuracy, and both are timed:

* **TV** (anisotropic, ``TVRecon(isotropic=False)``): the same objective,
  ``1/2 ||A x - y||^2 + lamda ||G x||_1``, evaluated with our function (complex128) on both
  results; ours must reach an objective ``<=`` SigPy's on every slice. Exact parity: the same
  splitting and steps (the iterates differ only through the power iterations' random starts).
* **L1-wavelet**: the wavelets differ (SigPy's pads with zeros and picks its levels, ours is
  periodic with 3 levels), so the objectives differ and each is measured on its own: SigPy's
  relative gap ``(F_s(x) - F_s*) / F_s*`` in its objective (its ``W``, via ``sigpy.linop``),
  ours in ours, ``F*`` from ``--reference-iterations`` iterations of each solver; ours must reach
  a gap ``<=`` SigPy's on every slice.

Timings include building the operators, the 30-step power iteration of each (ours batched, SigPy's
per slice) and the solve; median of ``--repeats`` interleaved calls after one warm-up. Threads:
ours uses ``torch.get_num_threads()`` (``OMP_NUM_THREADS``); SigPy's numpy FFTs are single-threaded.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
import torch
from _timing import time_interleaved
from bench_cgsense import load_batch

from deepinv_lab.functional.gradient import total_variation
from deepinv_lab.optim.fista import least_squares_objective
from deepinv_lab.recons import L1WaveletRecon, TVRecon
from deepinv_lab.systems.mri import MultiCoilMRI
from deepinv_lab.systems.wavelet import Wavelet2D

DTYPES = {"complex64": torch.complex64, "complex128": torch.complex128}


def our_objective(
    data: dict[str, torch.Tensor], x: torch.Tensor, regularizer: Callable
) -> np.ndarray:
    """``1/2 ||A x - y||^2 + regularizer(x)`` per slice, in complex128 on the CPU."""
    system = MultiCoilMRI(data["coil_maps"].to(torch.complex128), data["mask"].double())
    x = torch.as_tensor(x).detach().cpu().to(torch.complex128)
    y = data["y"].to(torch.complex128)
    return least_squares_objective(system, y, x, regularizer).numpy()


def fewest_iterations(objective: Callable[[int], np.ndarray], target: np.ndarray, high: int):
    """The smallest ``k`` in ``[1, high]`` with ``objective(k) <= target`` on every slice, by
    bisection (the objectives are not monotone in ``k``: a ``k`` whose objective reaches the
    target, with ``k - 1`` not reaching it); ``None`` if ``high`` does not reach it."""
    if not (objective(high) <= target).all():
        return None
    low = 0  # invariant: objective(high) reaches the target, low does not (or is 0)
    while high - low > 1:
        middle = (low + high) // 2
        if (objective(middle) <= target).all():
            high = middle
        else:
            low = middle
    return high


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=100, help="SigPy's iterations")
    parser.add_argument("--lamda", type=float, default=0.002)
    parser.add_argument("--slices", type=int, default=1)
    parser.add_argument("--downsample", type=int, default=1)
    parser.add_argument("--coils", type=int, default=8)
    parser.add_argument("--dtype", default="complex64", choices=list(DTYPES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference-iterations", type=int, default=1000)
    parser.add_argument(
        "--recons", nargs="+", default=["tv", "l1wavelet"], choices=["tv", "l1wavelet"]
    )
    args = parser.parse_args()
    import sigpy as sp
    import sigpy.mri.app
    import sigpy.mri.linop

    device = torch.device("cpu")
    data = load_batch(args.downsample, args.slices, args.coils)
    dtype = DTYPES[args.dtype]
    y = data["y"].to(dtype)
    system = MultiCoilMRI(data["coil_maps"].to(dtype), data["mask"])
    np_data = [
        (
            data["y"][b].numpy().astype(args.dtype),
            data["coil_maps"][b].numpy().astype(args.dtype),
            data["mask"][b].numpy(),
        )
        for b in range(args.slices)
    ]
    lamda, iterations = args.lamda, args.iterations
    shape = tuple(data["y"].shape)
    rows = []

    def sigpy_run(app_class, max_iter: int, **kwargs) -> np.ndarray:
        np.random.seed(0)  # SigPy's power iteration starts from np.random
        images = []
        for y_np, maps_np, weights in np_data:
            app = app_class(
                y_np, maps_np, lamda, weights=weights, max_iter=max_iter, show_pbar=False, **kwargs
            )
            images.append(app.run())
        return np.stack(images)[:, None]

    def ours_run(recon_class, max_iter: int, **kwargs) -> torch.Tensor:
        recon = recon_class(lamda, max_iter=max_iter, magnitude=False, **kwargs)
        with torch.no_grad():
            return recon(y, system)

    def tv_case():
        """Anisotropic TV: both results scored by our objective."""

        def regularizer(x: torch.Tensor) -> torch.Tensor:
            return lamda * total_variation(x, isotropic=False)

        def sigpy_solve(max_iter: int = iterations) -> np.ndarray:
            return sigpy_run(sigpy.mri.app.TotalVariationRecon, max_iter)

        def ours_solve(max_iter: int) -> torch.Tensor:
            return ours_run(TVRecon, max_iter, isotropic=False)

        def accuracy(max_iter: int) -> np.ndarray:
            return our_objective(data, ours_solve(max_iter), regularizer)

        target = our_objective(data, torch.from_numpy(sigpy_solve()), regularizer)
        return sigpy_solve, ours_solve, accuracy, target, "objective (ours)"

    def l1_wavelet_case():
        """L1-wavelet: each result scored by the relative gap in its own objective."""
        wavelet = Wavelet2D("db4", 3)

        def regularizer(x: torch.Tensor) -> torch.Tensor:
            return lamda * wavelet(x).abs().flatten(1).sum(dim=1)

        def sigpy_solve(max_iter: int = iterations) -> np.ndarray:
            return sigpy_run(sigpy.mri.app.L1WaveletRecon, max_iter, wave_name="db4")

        def ours_solve(max_iter: int) -> torch.Tensor:
            return ours_run(L1WaveletRecon, max_iter, wavelet="db4", levels=3)

        def sigpy_objective(images: np.ndarray) -> np.ndarray:
            values = []
            for (y_np, maps_np, weights), x in zip(np_data, images, strict=True):
                x = x[0].astype(np.complex128)
                sense = sigpy.mri.linop.Sense(maps_np.astype(np.complex128), weights=weights)
                w = sp.linop.Wavelet(sense.ishape, wave_name="db4")
                residual = sense(x) - y_np.astype(np.complex128) * weights**0.5
                values.append(0.5 * np.sum(np.abs(residual) ** 2) + lamda * np.sum(np.abs(w(x))))
            return np.array(values)

        sigpy_star = sigpy_objective(sigpy_solve(args.reference_iterations))
        star = our_objective(data, ours_solve(args.reference_iterations), regularizer)

        def accuracy(max_iter: int) -> np.ndarray:
            value = our_objective(data, ours_solve(max_iter), regularizer)
            return (value - star) / star

        target = (sigpy_objective(sigpy_solve()) - sigpy_star) / sigpy_star
        return sigpy_solve, ours_solve, accuracy, target, "relative gap (each its own)"

    cases = {"tv": tv_case, "l1wavelet": l1_wavelet_case}
    for name in args.recons:
        sigpy_solve, ours_solve, accuracy, target, measure = cases[name]()
        k = fewest_iterations(accuracy, target, 4 * iterations)
        row = {
            "recon": name,
            "measure": measure,
            "sigpy value": float(np.max(target)),
            "iters sigpy": iterations,
            "iters ours": k,
        }
        if k is not None:
            row["ours value"] = float(np.max(accuracy(k)))
            times = time_interleaved(
                {"ours": lambda k=k, solve=ours_solve: solve(k), "sigpy": sigpy_solve},
                device,
                repeats=args.repeats,
                warmup=1,
            )
            row["ms ours"], row["ms sigpy"] = times["ours"] * 1e3, times["sigpy"] * 1e3
            row["sigpy/ours"] = times["sigpy"] / times["ours"]
        rows.append(row)
        print(row, flush=True)

    print(
        f"\nTime to SigPy's accuracy after {iterations} iterations, lamda = {lamda}, "
        f"{args.slices} slice(s) {shape[-2]}x{shape[-1]}, {shape[1]} coils, {args.dtype}, ours "
        f"with {torch.get_num_threads()} threads, median of {args.repeats}"
    )
    columns = [
        ("recon", "{}"),
        ("measure", "{}"),
        ("iters sigpy", "{}"),
        ("iters ours", "{}"),
        ("sigpy value", "{:.6g}"),
        ("ours value", "{:.6g}"),
        ("ms sigpy", "{:.0f}"),
        ("ms ours", "{:.0f}"),
        ("sigpy/ours", "{:.2f}"),
    ]
    print("| " + " | ".join(column for column, _ in columns) + " |")
    print("|" + "|".join("---:" for _ in columns) + "|")
    for row in rows:
        cells = [fmt.format(row[c]) if row.get(c) is not None else "-" for c, fmt in columns]
        print("| " + " | ".join(cells) + " |")
    if any(row["iters ours"] is None for row in rows):
        print(f"(-: ours did not reach SigPy's value within {4 * iterations} iterations)")


if __name__ == "__main__":
    main()
