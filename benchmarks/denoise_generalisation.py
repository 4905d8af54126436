"""Noise-level generalisation of trained denoisers (Mohan et al., ICLR 2020): PSNR on the four
built-in validation photographs, whole images, at fixed noise levels inside and outside the
training range, with the noisy input's PSNR alongside.

    OMP_NUM_THREADS=1 python benchmarks/denoise_generalisation.py \\
        --checkpoint bias-free=/work/ckpt/bfcnn_mohan.ckpt \\
        --checkpoint biased=/work/ckpt/dncnn_mohan.ckpt [--sigmas 15 25 50 70 90 100]

Each ``--checkpoint LABEL=PATH`` is a ``deepinv-lab fit`` checkpoint of a denoising config,
rebuilt by :class:`~deepinv_lab.recons.TrainedDenoiser` (the loader plug-and-play uses) and run in
eval mode. Use ``last.ckpt``: the ``best-*`` checkpoint is chosen on the validation photographs,
which are then no longer unseen. Levels are on the 0-255 scale (images are in ``[0, 1]``); the
noise of image ``i`` at level ``s`` comes from the generator ``(seed, s, i)``, the same for every
checkpoint, and is neither clipped nor quantised. PSNR is over the whole image (peak 1), the
unclipped network output, averaged over the images. With two checkpoints the table also gives
``gap``, the first minus the second.
"""

from __future__ import annotations

import argparse
import time

import torch

from deepinv_lab.data.images import BUILTIN_IMAGES, load_builtin_images
from deepinv_lab.data.seeding import seeded_generator
from deepinv_lab.recons import TrainedDenoiser
from deepinv_lab.systems.noise import GaussianNoise
from deepinv_lab.training.metrics import psnr

DEFAULT_SIGMAS = (15, 25, 50, 70, 90, 100)


def noisy_images(images: list[torch.Tensor], sigma: float, seed: int) -> list[torch.Tensor]:
    """``x + n`` per image ``(1, C, H, W)``, ``n ~ N(0, (sigma / 255)^2)`` from the generator
    ``(seed, sigma, index)``."""
    noise = GaussianNoise(sigma / 255)
    return [
        noise(x, generator=seeded_generator(seed, round(sigma * 1000), i))
        for i, x in enumerate(images)
    ]


@torch.no_grad()
def mean_psnr(
    denoiser: TrainedDenoiser | None, noisy: list[torch.Tensor], clean: list[torch.Tensor]
) -> tuple[float, list[float]]:
    """Mean and per-image PSNR (dB) of ``denoiser`` (None: the noisy input itself)."""
    values = []
    for y, x in zip(noisy, clean, strict=True):
        estimate = y if denoiser is None else denoiser(y)
        values.append(float(psnr(estimate, x, 1.0)))
    return sum(values) / len(values), values


def _parse_checkpoint(spec: str) -> tuple[str, str]:
    label, sep, path = spec.partition("=")
    if not sep or not label or not path:
        raise argparse.ArgumentTypeError(f"expected LABEL=PATH, got {spec!r}")
    return label, path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--checkpoint", type=_parse_checkpoint, action="append", required=True,
        metavar="LABEL=PATH", help="a denoiser checkpoint (repeat; the first two give the gap)",
    )  # fmt: skip
    parser.add_argument("--sigmas", type=float, nargs="+", default=DEFAULT_SIGMAS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-image", action="store_true", help="also a table per image")
    args = parser.parse_args()

    clean = [torch.from_numpy(x.copy())[None] for x in load_builtin_images("val")]
    denoisers = {label: TrainedDenoiser(path) for label, path in args.checkpoint}
    labels = list(denoisers)
    gap = len(labels) >= 2
    rows, per_image = [], []
    start = time.perf_counter()
    for sigma in args.sigmas:
        noisy = noisy_images(clean, sigma, args.seed)
        means, images = {}, {}
        for label, denoiser in {"noisy input": None, **denoisers}.items():
            means[label], images[label] = mean_psnr(denoiser, noisy, clean)
        rows.append((sigma, means))
        per_image.append((sigma, images))
    seconds = time.perf_counter() - start

    names = ", ".join(name.rsplit(".", 1)[0] for name in BUILTIN_IMAGES["val"])
    print(f"PSNR (dB), mean over the {len(clean)} validation photographs ({names}), whole images")
    print()
    header = ["sigma (/255)", "noisy input", *labels] + (
        [f"gap ({labels[0]} - {labels[1]})"] if gap else []
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "---:|" * len(header))
    for sigma, means in rows:
        cells = [f"{sigma:g}"] + [f"{means[k]:.2f}" for k in ("noisy input", *labels)]
        if gap:
            cells.append(f"{means[labels[0]] - means[labels[1]]:+.2f}")
        print("| " + " | ".join(cells) + " |")
    if args.per_image:
        print()
        image_names = [name.rsplit(".", 1)[0] for name in BUILTIN_IMAGES["val"]]
        print("| sigma | method | " + " | ".join(image_names) + " |")
        print("|---:|---|" + "---:|" * len(image_names))
        for sigma, images in per_image:
            for label, values in images.items():
                print(f"| {sigma:g} | {label} | " + " | ".join(f"{v:.2f}" for v in values) + " |")
    print()
    print(f"evaluation: {seconds:.1f} s wall, {torch.get_num_threads()} thread(s)")


if __name__ == "__main__":
    main()
