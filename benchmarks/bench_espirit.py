"""ESPIRiT coil maps: deepinv-lab's ``espirit_maps`` (torch, batched) against SigPy's
``sigpy.mri.app.EspiritCalib`` (numpy, CPU), side by side on the same k-space, simulated from
birdcage maps and a smooth elliptical object.

    OMP_NUM_THREADS=2 python benchmarks/bench_espirit.py
        [--sizes 15x640x368 8x320x320 --calib-width 24 --threads 2 --repeats 3]

Both run with their defaults (threshold 0.02, kernel width 6, crop 0.95, 100 power iterations)
on ``--threads`` CPU threads (torch's intra-op threads, and BLAS / OpenMP through threadpoolctl
when it is installed). Each configuration reports the median time of each (calls interleaved, the
first untimed call collects the maps), SigPy's time over ours, and the agreement with SigPy:
``|<m, m_sigpy>| / (|m| |m_sigpy|)`` per pixel, its minimum inside the object (``agree obj``) and
over every pixel both keep (``agree kept``), and the number of pixels that only one of them crops
(``crop diff``). With CUDA, ours also runs on the GPU (``ms cuda``, with its agreement).
"""

from __future__ import annotations

import argparse
import contextlib

import numpy as np
import torch
from _timing import time_interleaved

from deepinv_lab.functional import fft2c
from deepinv_lab.systems.coils import birdcage_maps
from deepinv_lab.systems.espirit import espirit_maps


def simulate(coils: int, shape: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """k-space ``(coils, H, W)`` of a smooth object (flat ellipse, soft edge, smooth phase) seen
    by birdcage coils, and the object's interior ``(H, W)``."""
    y = torch.linspace(-1, 1, shape[0])[:, None]
    x = torch.linspace(-1, 1, shape[1])[None, :]
    r2 = (y / 0.8) ** 2 + (x / 0.7) ** 2
    image = torch.polar(torch.sigmoid((1 - r2) / 0.05), torch.pi / 3 * x + torch.pi / 4 * y**2)
    return fft2c(birdcage_maps(coils, shape) * image), r2 < 0.7


def agreement(ours: torch.Tensor, reference: torch.Tensor, region: torch.Tensor) -> float:
    """Minimum over ``region`` of the per-pixel ``|<m, m_ref>| / (|m| |m_ref|)``."""
    inner = (ours.conj() * reference).sum(0).abs()
    norms = ours.norm(dim=0) * reference.norm(dim=0)
    return float((inner[region] / norms[region]).min())


def compare(ours: torch.Tensor, reference: torch.Tensor, support: torch.Tensor) -> dict:
    ours = ours.cpu()
    kept, kept_reference = ours.norm(dim=0) > 0, reference.norm(dim=0) > 0
    return {
        "agree obj": agreement(ours, reference, support),
        "agree kept": agreement(ours, reference, kept & kept_reference),
        "crop diff": int((kept != kept_reference).sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--sizes", nargs="+", default=["15x640x368", "8x320x320"], help="coils x H x W"
    )
    parser.add_argument("--calib-width", type=int, default=24)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-sigpy", action="store_true", help="time ours only")
    parser.add_argument("--no-cuda", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    limits = contextlib.nullcontext()
    with contextlib.suppress(ImportError):
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(args.threads)
    sigpy_app = None
    if not args.no_sigpy:
        try:
            import sigpy.mri.app as sigpy_app
        except ImportError:
            print("sigpy not installed: its columns are skipped")
    use_cuda = torch.cuda.is_available() and not args.no_cuda

    rows = []
    with limits:
        for size in args.sizes:
            coils, height, width = (int(n) for n in size.split("x"))
            kspace, support = simulate(coils, (height, width))

            def ours(kspace=kspace) -> torch.Tensor:
                return espirit_maps(kspace, calib_width=args.calib_width)

            candidates = {"ours": ours}
            results = {"ours": ours()}
            if use_cuda:
                kspace_cuda = kspace.cuda()

                def ours_cuda(kspace=kspace_cuda) -> torch.Tensor:
                    return espirit_maps(kspace, calib_width=args.calib_width)

                candidates["cuda"] = ours_cuda
                results["cuda"] = ours_cuda()
            if sigpy_app is not None:
                kspace_np = kspace.numpy()

                def sigpy_espirit(kspace=kspace_np) -> np.ndarray:
                    # SigPy divides 0 / 0 in its phase reference where a map is zero
                    with np.errstate(divide="ignore", invalid="ignore"):
                        app = sigpy_app.EspiritCalib(
                            kspace, calib_width=args.calib_width, show_pbar=False
                        )
                        return np.nan_to_num(app.run())

                candidates["sigpy"] = sigpy_espirit
                results["sigpy"] = torch.from_numpy(sigpy_espirit())

            row = {"coils": coils, "size": f"{height}x{width}"}
            if "sigpy" in results:
                row.update(compare(results["ours"], results["sigpy"], support))
                if "cuda" in results:
                    row["agree obj cuda"] = compare(results["cuda"], results["sigpy"], support)[
                        "agree obj"
                    ]
            # the CUDA timings synchronise; the CPU ones are unaffected by it
            device = torch.device("cuda" if use_cuda else "cpu")
            times = time_interleaved(candidates, device, repeats=args.repeats, warmup=0)
            row["ms ours"] = times["ours"] * 1e3
            if "cuda" in times:
                row["ms cuda"] = times["cuda"] * 1e3
            if "sigpy" in times:
                row["ms sigpy"] = times["sigpy"] * 1e3
                row["sigpy/ours"] = times["sigpy"] / times["ours"]
                if "cuda" in times:
                    row["sigpy/cuda"] = times["sigpy"] / times["cuda"]
            rows.append(row)
            print(row, flush=True)

    print(
        f"\nESPIRiT maps, calib_width {args.calib_width}, one sample, ours (torch) and SigPy on "
        f"{args.threads} CPU threads, median of {args.repeats}"
        + (f", ours also on {torch.cuda.get_device_name()}" if use_cuda else "")
    )
    columns = [
        ("coils", "{}"),
        ("size", "{}"),
        ("ms ours", "{:.0f}"),
        ("ms sigpy", "{:.0f}"),
        ("sigpy/ours", "{:.1f}"),
        ("ms cuda", "{:.1f}"),
        ("sigpy/cuda", "{:.0f}"),
        ("agree obj", "{:.7f}"),
        ("agree kept", "{:.7f}"),
        ("crop diff", "{}"),
        ("agree obj cuda", "{:.7f}"),
    ]
    columns = [(name, fmt) for name, fmt in columns if any(name in row for row in rows)]
    print("| " + " | ".join(name for name, _ in columns) + " |")
    print("|" + "|".join("---:" for _ in columns) + "|")
    for row in rows:
        cells = [fmt.format(row[name]) if name in row else "-" for name, fmt in columns]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
