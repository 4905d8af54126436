"""Coil compression 15 -> 8 -> 4 virtual coils: what it saves in the reconstruction pipeline of
one fastMRI-sized slice, and what it costs in quality.

    OMP_NUM_THREADS=2 python benchmarks/bench_coil_compression.py [--coils 15 --virtual 8 4]

The slice: the built-in brain (1 mm, upsampled 1.6x to the size of a fastMRI brain) with a smooth
phase, zero-padded to fastMRI's 640 x 368 matrix (readout oversampled 2x), seen by 15 birdcage
coils, with complex Gaussian k-space noise of ``NOISE`` (0.5%) of the coil images' peak; an
equispaced column mask, R = 4, 8% centre. The target is the root-sum-of-squares of the
noise-free coil images, cropped to 320 x 320. For each number of coils it times (median of
interleaved calls, 2 threads) the compression, ESPIRiT maps from the ACS columns, 20 CG-SENSE
iterations and GRAPPA, and reports the NMSE of CG-SENSE and GRAPPA against the target. With
``--modl`` it also times one MoDL training step (forward, L1 loss, backward) of
``configs/modl_fastmri.json``'s Recon (``Normalized(MoDL)``: 5 iterations, 10 CG steps, a
ResNetDenoiser of 5 layers and 32 channels) on the slice, with each number of coils.

Birdcage coils are smoother and fewer-dimensional than a real array's, so the quality cost
measured here is a lower bound of what real 15-coil data lose.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from _timing import time_interleaved

from deepinv_lab.data.builtin import load_template_slices
from deepinv_lab.data.physics import CartesianMask, EspiritEstimate
from deepinv_lab.functional import center_crop, fft2c, ifft2c, rss
from deepinv_lab.recons import CGSense, GrappaRecon
from deepinv_lab.systems.coil_compression import compress_coils
from deepinv_lab.systems.coils import birdcage_maps
from deepinv_lab.systems.mri import MultiCoilFourier, MultiCoilMRI

SHAPE = (640, 368)
CROP = (320, 320)
#: k-space noise level, relative to the coil images' peak
NOISE = 0.005


def simulate(coils: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Masked noisy k-space ``(1, coils, H, W)``, its mask and ACS width, and the target."""
    magnitude = torch.from_numpy(load_template_slices()[95]).float()[None, None]
    magnitude = F.interpolate(magnitude, scale_factor=1.6, mode="bilinear")[0, 0]
    magnitude = magnitude / magnitude.max()
    pad_h, pad_w = SHAPE[0] - magnitude.shape[0], SHAPE[1] - magnitude.shape[1]
    magnitude = F.pad(magnitude, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
    phase = torch.linspace(-1, 1, SHAPE[1])[None].expand_as(magnitude)
    images = birdcage_maps(coils, SHAPE) * torch.polar(magnitude, phase)
    target = center_crop(rss(images, dim=0), CROP)[None, None]
    generator = torch.Generator().manual_seed(0)
    kspace = fft2c(images)
    sigma = NOISE * float(images.abs().max())
    kspace = kspace + sigma * torch.randn(kspace.shape, dtype=kspace.dtype, generator=generator)
    params = CartesianMask("equispaced_fraction", (4,), (0.08,)).draw(SHAPE, generator)
    mask = params["mask"][None]
    return kspace * mask, mask, params["num_low_frequencies"].reshape(1), target


def nmse(output: torch.Tensor, target: torch.Tensor) -> float:
    output = center_crop(output, target.shape[-2:])
    return float(((output - target) ** 2).sum() / (target**2).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coils", type=int, default=15)
    parser.add_argument("--virtual", type=int, nargs="+", default=[8, 4])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--modl", action="store_true", help="also time a MoDL training step")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    kspace, mask, widths, target = simulate(args.coils)
    device = torch.device("cpu")
    espirit = EspiritEstimate()
    cg = CGSense(damping=0.01, max_iter=20, tol=1e-12, on_failure="ignore")
    grappa = GrappaRecon()
    print(f"{args.coils} coils, {SHAPE[0]} x {SHAPE[1]}, R = 4 equispaced, 8% centre, "
          f"{args.threads} threads, median of {args.repeats}")  # fmt: skip
    header = "| coils | ms compress | ms ESPIRiT | ms CG-SENSE (20 it) | ms GRAPPA | "
    header += "NMSE CG-SENSE | NMSE GRAPPA | NMSE zero-filled RSS |"
    print(header)
    print("|" + "---:|" * 8)
    for coils in [args.coils, *args.virtual]:
        data = kspace if coils == args.coils else compress_coils(kspace, coils)
        maps = espirit(data, widths)
        system = MultiCoilMRI(maps, mask, widths)
        fourier = MultiCoilFourier(mask, widths)
        times = time_interleaved(
            {
                "compress": lambda c=coils: compress_coils(kspace, c),
                "espirit": lambda d=data: espirit(d, widths),
                "cg": lambda d=data, s=system: cg(d, s),
                "grappa": lambda d=data, s=fourier: grappa(d, s),
            },
            device,
            repeats=args.repeats,
            warmup=1,
        )
        if coils == args.coils:
            times["compress"] = 0.0
        zero_filled = rss(ifft2c(data), dim=1, keepdim=True)
        print(
            f"| {coils} | {times['compress'] * 1e3:.0f} | {times['espirit'] * 1e3:.0f} | "
            f"{times['cg'] * 1e3:.0f} | {times['grappa'] * 1e3:.0f} | "
            f"{nmse(cg(data, system), target):.5f} | {nmse(grappa(data, fourier), target):.5f} | "
            f"{nmse(zero_filled, target):.5f} |"
        )
    if args.modl:
        print("\nMoDL training step (forward + L1 loss + backward), Normalized(MoDL), 5 iterations")
        print("| coils | ms step | ratio to all coils |")
        print("|---:|---:|---:|")
        modl = modl_recon()
        steps = {}
        for coils in [args.coils, *args.virtual]:
            data = kspace if coils == args.coils else compress_coils(kspace, coils)
            system = MultiCoilMRI(espirit(data, widths), mask, widths)
            steps[coils] = time_interleaved(
                {"step": lambda d=data, s=system: training_step(modl, d, s, target)},
                device,
                repeats=args.repeats,
                warmup=1,
            )["step"]
            print(
                f"| {coils} | {steps[coils] * 1e3:.0f} | {steps[args.coils] / steps[coils]:.2f} |"
            )


def modl_recon() -> torch.nn.Module:
    """The Recon of configs/modl_fastmri.json."""
    from deepinv_lab.models import ResNetDenoiser
    from deepinv_lab.recons import MoDL, Normalized

    torch.manual_seed(0)
    denoiser = ResNetDenoiser(in_chans=2, num_layers=5, chans=32)
    return Normalized(MoDL(denoiser, num_iterations=5, damping=0.05, cg_max_iter=10))


def training_step(recon, kspace, system, target) -> None:
    recon.zero_grad(set_to_none=True)
    output = center_crop(recon(kspace, system), target.shape[-2:])
    (output - target).abs().mean().backward()


if __name__ == "__main__":
    main()
