"""CG-SENSE: time to reach a relative residual of the normal equations, deepinv-lab's CGSense
(torch, batched) against SigPy's ``sigpy.mri.app.SenseRecon`` (numpy, one slice at a time), on
validation slices of the built-in brain MRI (``SimulatedBrainMRIDataModule``).

    OMP_NUM_THREADS=2 python benchmarks/bench_cgsense.py [--device cuda]
        [--downsample 1 2 --batch 1 8 --tols 1e-4 1e-6 --damping 1e-2 --repeats 3 --threads 1]

Both solve ``(A^H A + lam I) x = A^H y`` by CG from ``x = 0`` and stop on their own residual
recursion: ours at ``||r|| / ||A^H y|| <= tol`` per sample; SigPy's ``tol`` is absolute
(``||r|| <= tol``), so each slice gets ``tol * ||A^H y||``. Both outputs are then checked with the
residual computed directly in complex128, ``||A^H y - (A^H A + lam I) x|| / ||A^H y||`` (the
column ``resid``, the worst slice), and compared (``rel diff``: ``||x_ours - x_sigpy|| /
||x_sigpy||``). SigPy runs in the dtype of its input (``x`` starts as ``zeros(dtype=y.dtype)``):
it gets the same dtype as our row. Timings include building the operators and ``A^H y``; the
first (untimed) call that collects the results is the warm-up.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from _timing import time_interleaved

from deepinv_lab.data.presets import SimulatedBrainMRIDataModule
from deepinv_lab.recons.cg_sense import CGSense
from deepinv_lab.systems.mri import MultiCoilMRI

DTYPES = {"complex64": torch.complex64, "complex128": torch.complex128}


def load_batch(downsample: int, batch: int, coils: int) -> dict[str, torch.Tensor]:
    data = SimulatedBrainMRIDataModule(downsample=downsample, num_coils=coils)
    dataset = data.val_set
    if batch > len(dataset):
        raise ValueError(f"batch {batch} exceeds the {len(dataset)} validation slices")
    stacked = data.collate_fn([dataset[i] for i in range(batch)])
    return {key: stacked[key] for key in ("y", "coil_maps", "mask")}


def relative_residual(data: dict[str, torch.Tensor], x: torch.Tensor, damping: float) -> float:
    """Worst slice's ``||A^H y - (A^H A + lam I) x|| / ||A^H y||``, in complex128 on the CPU."""
    system = MultiCoilMRI(data["coil_maps"].to(torch.complex128), data["mask"].double())
    x = x.detach().cpu().to(torch.complex128)
    rhs = system.adjoint(data["y"].to(torch.complex128))
    residual = rhs - system.normal(x) - damping * x
    return float((residual.flatten(1).norm(dim=1) / rhs.flatten(1).norm(dim=1)).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu", help="device of our CGSense (SigPy: CPU)")
    parser.add_argument("--downsample", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--coils", type=int, default=8)
    parser.add_argument("--tols", type=float, nargs="+", default=[1e-4, 1e-6])
    parser.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=list(DTYPES))
    parser.add_argument("--damping", type=float, default=1e-2)
    parser.add_argument("--max-iter", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-sigpy", action="store_true", help="time our CGSense only")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sigpy_mri = None
    if not args.no_sigpy:
        try:
            import sigpy.mri.app as sigpy_mri
        except ImportError:
            print("sigpy not installed: its columns are skipped")

    rows = []
    for downsample in args.downsample:
        for batch in args.batch:
            data = load_batch(downsample, batch, args.coils)
            shape = tuple(data["y"].shape)
            for dtype_name in args.dtypes:
                dtype = DTYPES[dtype_name]
                real = torch.empty((), dtype=dtype).real.dtype
                y = data["y"].to(device=device, dtype=dtype)
                maps = data["coil_maps"].to(device=device, dtype=dtype)
                mask = data["mask"].to(device=device, dtype=real)
                np_data = [
                    (
                        data["y"][b].numpy().astype(dtype_name),
                        data["coil_maps"][b].numpy().astype(dtype_name),
                        data["mask"][b].numpy().astype(np.dtype(dtype_name).char.lower()),
                    )
                    for b in range(batch)
                ]
                for tol in args.tols:
                    recon = CGSense(
                        damping=args.damping,
                        tol=tol,
                        max_iter=args.max_iter,
                        magnitude=False,
                        on_failure="ignore",
                    ).to(device)

                    def ours(recon=recon, y=y, maps=maps, mask=mask) -> torch.Tensor:
                        with torch.no_grad():
                            return recon(y, MultiCoilMRI(maps, mask))

                    candidates = {"ours": ours}
                    x_ours = ours()
                    iterations = recon.last_info.iterations
                    row = {
                        "size": f"{shape[-2]}x{shape[-1]}",
                        "batch": batch,
                        "dtype": dtype_name,
                        "tol": tol,
                        "iters ours": f"{int(iterations.min())}-{int(iterations.max())}",
                        "resid ours": relative_residual(data, x_ours, args.damping),
                    }
                    if sigpy_mri is not None:
                        apps_iterations: list[int] = []

                        def sigpy_sense(np_data=np_data, tol=tol, record=None) -> np.ndarray:
                            images = []
                            for y_np, maps_np, weights in np_data:
                                # SenseRecon's y is sqrt(w) y and its A^H is that of sqrt(w) F S.
                                rhs_norm = np.linalg.norm(
                                    sigpy_mri.linop.Sense(maps_np, weights=weights).H(
                                        y_np * weights**0.5
                                    )
                                )
                                app = sigpy_mri.SenseRecon(
                                    y_np,
                                    maps_np,
                                    lamda=args.damping,
                                    weights=weights,
                                    max_iter=args.max_iter,
                                    tol=tol * float(rhs_norm),
                                    show_pbar=False,
                                )
                                images.append(app.run())
                                if record is not None:
                                    record.append(app.alg.iter)
                            return np.stack(images)[:, None]

                        x_sigpy = torch.from_numpy(sigpy_sense(record=apps_iterations))
                        candidates["sigpy"] = sigpy_sense
                        x_ours_cpu = x_ours.cpu().to(torch.complex128)
                        x_sigpy = x_sigpy.to(torch.complex128)
                        row.update(
                            {
                                "iters sigpy": f"{min(apps_iterations)}-{max(apps_iterations)}",
                                "resid sigpy": relative_residual(data, x_sigpy, args.damping),
                                "rel diff": float((x_ours_cpu - x_sigpy).norm() / x_sigpy.norm()),
                            }
                        )
                    times = time_interleaved(candidates, device, repeats=args.repeats, warmup=0)
                    row["ms ours"] = times["ours"] * 1e3
                    if "sigpy" in times:
                        row["ms sigpy"] = times["sigpy"] * 1e3
                        row["sigpy/ours"] = times["sigpy"] / times["ours"]
                    rows.append(row)
                    print(row, flush=True)

    print(
        f"\nCG-SENSE to a relative residual tol, lam = {args.damping}, {args.coils} coils, "
        f"ours on {device} (threads {torch.get_num_threads()}), SigPy on CPU (numpy), "
        f"median of {args.repeats}"
    )
    columns = [
        ("size", "{}"),
        ("batch", "{}"),
        ("dtype", "{}"),
        ("tol", "{:.0e}"),
        ("iters ours", "{}"),
        ("iters sigpy", "{}"),
        ("ms ours", "{:.1f}"),
        ("ms sigpy", "{:.1f}"),
        ("sigpy/ours", "{:.2f}"),
        ("resid ours", "{:.1e}"),
        ("resid sigpy", "{:.1e}"),
        ("rel diff", "{:.1e}"),
    ]
    columns = [(name, fmt) for name, fmt in columns if any(name in row for row in rows)]
    print("| " + " | ".join(name for name, _ in columns) + " |")
    print("|" + "|".join("---:" for _ in columns) + "|")
    for row in rows:
        cells = [fmt.format(row[name]) if name in row else "-" for name, fmt in columns]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
