"""Deep equilibrium (DEQ) proximal-gradient MRI reconstruction: (a) Anderson vs Picard iterations
and time to tolerance, (b) activation memory of a training step, DEQ vs the same map unrolled.

    OMP_NUM_THREADS=2 python benchmarks/bench_deq.py [--device cuda] [--batch 4]
        [--tols 1e-3 1e-4] [--unrolled 5 10 20 40]

The map is one proximal-gradient step ``f(x) = gamma * D(x - eta A^H (A x - y))`` on the built-in
simulated brain MRI (validation items, 2 mm pixels, 8 coils, 4x random Cartesian mask),
``A = MultiCoilMRI``, ``eta = 1`` (``||A^H A|| <= 1``) and ``D`` a small DnCNN without batch norm,
randomly initialised (seeded), spectrally normalised, applied to complex images through
``ComplexWrapper``; ``gamma < 1`` makes ``f`` contractive in practice.

Memory (b) is measured deterministically as the bytes of the distinct storages autograd saves
for backward (``torch.autograd.graph.saved_tensors_hooks``) during the forward pass of a training
step; on CUDA also as the peak allocated memory of the whole step (forward, loss, backward),
which includes the fixed-point solvers' buffers.
"""

from __future__ import annotations

import argparse
import time

import torch
from _timing import time_interleaved

from deepinv_lab.data.presets import SimulatedBrainMRIDataModule
from deepinv_lab.models.dncnn import DnCNN
from deepinv_lab.models.spectral import spectral_normalize
from deepinv_lab.models.wrappers import ComplexWrapper
from deepinv_lab.optim.deq import DeepEquilibrium
from deepinv_lab.optim.fixed_point import solve_fixed_point
from deepinv_lab.systems.mri import MultiCoilMRI


def load_batch(batch: int, device: torch.device):
    """Stacked validation items: the System, y ``(B, coils, H, W)`` and targets ``(B, 1, H, W)``."""
    data = SimulatedBrainMRIDataModule(downsample=2, num_coils=8)
    stacked = data.collate_fn([data.val_set[i] for i in range(batch)])
    system = MultiCoilMRI(stacked["coil_maps"], stacked["mask"]).to(device)
    return system, stacked["y"].to(device), stacked["target"].to(device)


def build_map(system, y, gamma: float, scale: float, device: torch.device, seed: int = 0):
    torch.manual_seed(seed)
    cnn = DnCNN(in_chans=2, num_layers=5, chans=32, batch_norm=False)
    denoiser = ComplexWrapper(spectral_normalize(cnn, scale=scale, n_power_iterations=20)).to(
        device
    )
    with torch.no_grad():  # converge the power iterations once, then freeze them (eval mode)
        denoiser(torch.zeros(1, 1, 16, 16, dtype=torch.complex64, device=device))
    denoiser.eval()

    def f(x: torch.Tensor) -> torch.Tensor:
        return gamma * denoiser(x - system.adjoint(system(x) - y))

    return f, denoiser


def part_a(f, x0, tols, max_iter, repeats, device) -> None:
    print(
        "\n(a) fixed-point solve of f, iterations (mean over the batch, max) and median time "
        f"of {repeats} runs"
    )
    print("| tol | solver | iterations mean | iterations max | converged | time ms | time ratio |")
    print("|---|---|---:|---:|---:|---:|---:|")
    infos = {}

    def run(solver, tol):
        _, infos[solver] = solve_fixed_point(
            f, x0, solver, tol=tol, max_iter=max_iter, on_failure="ignore"
        )

    for tol in tols:
        times = time_interleaved(
            {s: (lambda s=s, tol=tol: run(s, tol)) for s in ("picard", "anderson")},
            device,
            repeats=repeats,
            warmup=1,
        )
        for solver in ("picard", "anderson"):
            info = infos[solver]
            converged = f"{int(info.converged.sum())}/{info.converged.numel()}"
            print(
                f"| {tol:g} | {solver} | {info.iterations.double().mean():.1f} | "
                f"{int(info.iterations.max())} | {converged} | {times[solver] * 1e3:.0f} | "
                f"{times[solver] / times['picard']:.2f} |"
            )


class SavedBytes:
    """Bytes of the distinct storages saved for backward inside the context."""

    def __init__(self):
        self.storages: dict[int, int] = {}

    def pack(self, tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        self.storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    def __enter__(self):
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self.pack, lambda t: t)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc):
        self._hooks.__exit__(*exc)

    @property
    def total(self) -> int:
        return sum(self.storages.values())


def part_b(f, denoiser, x0, target, unrolled, deq, device) -> None:
    def loss_fn(x):
        return (x.abs() - target).square().mean()

    def step(run):
        denoiser.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
        start = time.perf_counter()
        with SavedBytes() as saved:
            loss = loss_fn(run())
        loss.backward()
        peak = None
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            peak = torch.cuda.max_memory_allocated(device) - base
        return saved.total, peak, time.perf_counter() - start

    def unroll(k):
        def run():
            x = x0
            for _ in range(k):
                x = f(x)
            return x

        return run

    rows = [(f"unrolled K={k}", unroll(k)) for k in unrolled]
    rows.append((f"DEQ ({deq.solver}, tol {deq.tol:g}, implicit backward)", lambda: deq(f, x0)))
    print("\n(b) one training step (forward, |x| MSE loss, backward): memory saved for backward")
    cuda = device.type == "cuda"
    header = "| method | saved for backward MiB |" + (" peak CUDA MiB |" if cuda else "")
    print(header + " step time ms |")
    print("|---|---:|" + ("---:|" if cuda else "") + "---:|")
    for name, run in rows:
        step(run)  # warm-up
        saved, peak, seconds = step(run)
        cells = f"| {name} | {saved / 2**20:.1f} |"
        if cuda:
            cells += f" {peak / 2**20:.1f} |"
        print(cells + f" {seconds * 1e3:.0f} |")
    stats = deq.diagnostics()
    print(
        f"\nDEQ iterations: forward {stats['deq/iterations']:.1f} (residual "
        f"{stats['deq/relative_residual']:.1e}), backward {stats['deq/backward_iterations']:.1f} "
        f"(residual {stats['deq/backward_relative_residual']:.1e})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--gamma", type=float, default=0.95, help="contraction factor of f")
    parser.add_argument("--scale", type=float, default=0.5, help="spectral norm per layer")
    parser.add_argument("--tols", type=float, nargs="+", default=(1e-3, 1e-4))
    parser.add_argument("--max-iter", type=int, default=300)
    parser.add_argument("--unrolled", type=int, nargs="+", default=(5, 10, 20, 40))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = torch.device(args.device)

    system, y, target = load_batch(args.batch, device)
    f, denoiser = build_map(system, y, args.gamma, args.scale, device)
    x0 = system.adjoint(y)
    print(
        f"DEQ proximal gradient on the built-in brain MRI val: x {tuple(x0.shape)} complex, "
        f"8 coils, gamma {args.gamma}, spectral scale {args.scale}, device {device}, "
        f"threads {torch.get_num_threads()}"
    )
    part_a(f, x0, args.tols, args.max_iter, args.repeats, device)
    deq = DeepEquilibrium(solver="anderson", tol=1e-4, max_iter=args.max_iter)
    part_b(f, denoiser, x0, target, args.unrolled, deq, device)


if __name__ == "__main__":
    main()
