"""One E2E-VarNet training step (forward, SSIM loss, backward, Adam) of deepinv-lab's VarNet
against fastMRI's reference VarNet with the same weights, when the fastmri package is installed.

    OMP_NUM_THREADS=2 python benchmarks/bench_varnet_step.py [--device cuda]
        [--cascades 12 --size 640 368 --coils 15] [--checkpoint]
"""

from __future__ import annotations

import argparse

import torch
from _timing import print_table, time_interleaved

from deepinv_lab.recons.varnet import VarNet
from deepinv_lab.systems.mri import KSpaceMask
from deepinv_lab.systems.sampling import RandomMaskFunc
from deepinv_lab.training.losses import SSIMLoss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--cascades", type=int, default=4)
    parser.add_argument("--coils", type=int, default=8)
    parser.add_argument("--size", type=int, nargs=2, default=(320, 320))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--checkpoint", action="store_true", help="also time checkpoint_cascades")
    args = parser.parse_args()
    device = torch.device(args.device)
    height, width = args.size
    torch.manual_seed(0)

    mask, num_low = RandomMaskFunc([0.08], [4])((args.coils, height, width, 2), seed=0)
    mask = mask.reshape(1, 1, 1, width).to(device)
    kspace = torch.randn(1, args.coils, height, width, dtype=torch.complex64, device=device) * mask
    target = torch.rand(1, 1, height, width, device=device)
    max_value = target.amax().reshape(1)
    system = KSpaceMask(mask)
    loss_fn = SSIMLoss().to(device)

    def step_fn(model, run):
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-6)

        def step() -> None:
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(run(model), target, max_value)
            loss.backward()
            optimizer.step()

        return step

    ours = VarNet(num_cascades=args.cascades).to(device)
    candidates = {"deepinv-lab VarNet": step_fn(ours, lambda m: m(kspace, system))}
    if args.checkpoint:
        checkpointed = VarNet(num_cascades=args.cascades, checkpoint_cascades=True).to(device)
        checkpointed.load_state_dict(ours.state_dict())
        candidates["deepinv-lab VarNet, checkpoint_cascades"] = step_fn(
            checkpointed, lambda m: m(kspace, system)
        )
    reference = "deepinv-lab VarNet"
    try:
        from fastmri.models import VarNet as FastMRIVarNet

        theirs = FastMRIVarNet(num_cascades=args.cascades).to(device)
        theirs.load_state_dict(ours.state_dict())
        kspace_r = torch.view_as_real(kspace)
        mask_r = mask.bool()[..., None]
        candidates["fastMRI VarNet (reference)"] = step_fn(
            theirs, lambda m: m(kspace_r, mask_r, num_low).unsqueeze(1)
        )
        reference = "fastMRI VarNet (reference)"
    except ImportError:
        print("fastmri not installed: its column is skipped")

    times = time_interleaved(candidates, device, repeats=args.repeats, warmup=1)
    if device.type == "cuda":
        for name, step in candidates.items():
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            step()
            torch.cuda.synchronize(device)
            peak = torch.cuda.max_memory_allocated(device) / 2**30
            print(f"peak GPU memory of one step, {name}: {peak:.2f} GiB")
    print_table(
        f"VarNet training step ({args.cascades} cascades, fastMRI widths), k-space "
        f"(1, {args.coils}, {height}, {width}), device {device}, threads {torch.get_num_threads()}",
        times,
        reference=reference,
    )


if __name__ == "__main__":
    main()
