"""Multicoil MRI forward + adjoint (A = M F S) against a bare torch.fft of the same size, and
against fastMRI's functional ops (2-channel real tensors) when the fastmri package is installed.

    OMP_NUM_THREADS=2 python benchmarks/bench_multicoil.py [--device cuda]
        [--batch 4 --coils 16 --size 320 320]
"""

from __future__ import annotations

import argparse

import torch
from _timing import print_table, time_interleaved

from deepinv_lab.systems.mri import MultiCoilMRI


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--coils", type=int, default=16)
    parser.add_argument("--size", type=int, nargs=2, default=(320, 320))
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    device = torch.device(args.device)
    height, width = args.size
    shape = (args.batch, args.coils, height, width)

    maps = torch.randn(shape, dtype=torch.complex64, device=device)
    mask = (torch.rand(args.batch, 1, 1, width, device=device) < 0.3).float()
    x = torch.randn(args.batch, 1, height, width, dtype=torch.complex64, device=device)
    system = MultiCoilMRI(maps, mask)
    coil_images = maps * x
    dims = (-2, -1)

    def bare_fft() -> torch.Tensor:
        k = torch.fft.fft2(coil_images, dim=dims, norm="ortho")
        return torch.fft.ifft2(k, dim=dims, norm="ortho")

    def bare_centered_fft() -> torch.Tensor:
        k = torch.fft.fftshift(
            torch.fft.fft2(torch.fft.ifftshift(coil_images, dim=dims), dim=dims, norm="ortho"),
            dim=dims,
        )
        return torch.fft.fftshift(
            torch.fft.ifft2(torch.fft.ifftshift(k, dim=dims), dim=dims, norm="ortho"), dim=dims
        )

    def ours() -> torch.Tensor:
        return system.adjoint(system(x))

    candidates = {
        "bare torch.fft fft2+ifft2 (no shifts)": bare_fft,
        "bare torch.fft centered fft2c+ifft2c": bare_centered_fft,
        "deepinv-lab MultiCoilMRI forward+adjoint": ours,
    }
    try:
        import fastmri

        maps_r = torch.view_as_real(maps)
        mask_r = mask[..., None]
        x_r = torch.view_as_real(x)

        def fastmri_ops() -> torch.Tensor:
            k = fastmri.fft2c(fastmri.complex_mul(x_r, maps_r)) * mask_r
            image = fastmri.complex_mul(fastmri.ifft2c(k * mask_r), fastmri.complex_conj(maps_r))
            return image.sum(dim=1, keepdim=True)

        candidates["fastMRI ops (2-channel real) forward+adjoint"] = fastmri_ops
    except ImportError:
        print("fastmri not installed: its column is skipped")

    times = time_interleaved(candidates, device, repeats=args.repeats)
    print_table(
        f"multicoil forward+adjoint, k-space {shape} complex64, device {device}, "
        f"threads {torch.get_num_threads()}",
        times,
        reference="bare torch.fft centered fft2c+ifft2c",
    )

    # The normal operator A^H A: what CG and unrolled networks call in their inner loop.
    def ours_normal() -> torch.Tensor:
        return system.normal(x)

    normal_candidates = {
        "bare torch.fft fft2+ifft2 (no shifts)": bare_fft,
        "deepinv-lab MultiCoilMRI.normal (A^H A)": ours_normal,
        "deepinv-lab adjoint(forward(x))": ours,
    }
    if device.type == "cpu":
        try:
            import sigpy.mri

            # SigPy's Sense takes one slice: one operator per slice of the batch.
            normal_ops = []
            for b in range(args.batch):
                sense = sigpy.mri.linop.Sense(maps[b].numpy(), weights=mask[b].numpy())
                normal_ops.append((sense.H * sense, x[b, 0].numpy()))

            def sigpy_normal() -> object:
                return [normal_op(x_np) for normal_op, x_np in normal_ops]

            normal_candidates["SigPy Sense.H * Sense (reference)"] = sigpy_normal
        except ImportError:
            print("sigpy not installed: its column is skipped")
    times = time_interleaved(normal_candidates, device, repeats=args.repeats)
    print_table(
        f"multicoil normal operator A^H A, k-space {shape} complex64, device {device}, "
        f"threads {torch.get_num_threads()}",
        times,
        reference="bare torch.fft fft2+ifft2 (no shifts)",
    )


if __name__ == "__main__":
    main()
