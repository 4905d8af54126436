"""What one plug-and-play iteration costs against one forward of its denoiser.

A PnP-HQS (DPIR) iteration is an x-step, ``(A^H A + rho I) x = A^H y + rho z`` by CG (a few
``A^H A`` products), then one denoiser call; on complex MRI images the denoiser sees the real and
imaginary parts, a batch of two. Measured for the three Systems of the PnP configs, with the
denoiser of ``configs/bfcnn_mohan.json`` (its architecture; random weights: the cost does not
depend on them):

* inpainting of a 256 x 256 photograph (70% of the pixels missing);
* x4 bicubic super-resolution to 256 x 256;
* 8-coil Cartesian MRI, 4x random columns, 224 x 192 (``configs/modl.json``'s size after its
  downsampling by 2, i.e. 224 x 192 at full size).

    OMP_NUM_THREADS=2 python benchmarks/bench_pnp.py [--threads 2] [--cg-iter 20]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from _timing import print_table, time_interleaved

from deepinv_lab.models import BiasFreeDnCNN
from deepinv_lab.recons import PlugAndPlay
from deepinv_lab.systems import Downsampling, Inpainting, MultiCoilMRI
from deepinv_lab.systems.coils import birdcage_maps

CONFIG = Path(__file__).parents[1] / "configs" / "bfcnn_mohan.json"


def denoiser() -> BiasFreeDnCNN:
    recon = json.loads(CONFIG.read_text())["model"]["init_args"]["recon"]
    model = BiasFreeDnCNN(**recon["init_args"]["model"]["init_args"])
    return model.eval().requires_grad_(False)


def systems(size: int = 256) -> dict[str, tuple]:
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(1, 1, size, size, generator=generator)
    inpainting = Inpainting((torch.rand(1, 1, size, size, generator=generator) > 0.7).float())
    down = Downsampling(4)
    h, w = 224, 192
    mask = (torch.rand(1, 1, 1, w, generator=generator) < 0.2).float()
    mask[..., w // 2 - 8 : w // 2 + 8] = 1
    mri = MultiCoilMRI(birdcage_maps(8, (h, w))[None], mask)
    brain = torch.rand(1, 1, h, w, generator=generator).to(torch.complex64)
    return {
        "inpainting 256x256": (inpainting, inpainting(image)),
        "x4 super-resolution to 256x256": (down, down(image)),
        "8-coil MRI 224x192": (mri, mri(brain)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cg-iter", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = denoiser()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, denoiser {CONFIG.name}")
    for name, (system, y) in systems().items():
        one = PlugAndPlay(model, num_iterations=1, noise_level=0.01, cg_max_iter=args.cg_iter,
                          cg_tol=0.0, magnitude=False)  # fmt: skip
        image = system.adjoint(y)
        parts = torch.cat([image.real, image.imag]) if image.is_complex() else image
        with torch.no_grad():
            times = time_interleaved(
                {
                    "denoiser forward": lambda p=parts: model(p),
                    f"PnP-HQS iteration (CG {args.cg_iter})": lambda s=system, v=y, r=one: r(v, s),
                    "x-step only (A^H A products)": lambda s=system, v=image: [
                        s.normal(v) for _ in range(args.cg_iter)
                    ],
                },  # fmt: skip
                torch.device("cpu"),
                repeats=args.repeats,
            )
        print_table(name, times, "denoiser forward")


if __name__ == "__main__":
    main()
