"""Write the built-in brain as fastMRI multicoil files, to run the fastMRI configs end to end
where no fastMRI data can be downloaded.

    python benchmarks/builtin_as_fastmri.py --out /tmp/brain_fastmri [--coils 8 --noise 0.002]

``multicoil_train/file1.h5`` holds the built-in training slices and ``multicoil_val/file2.h5`` the
validation slices (MNI152 T1 at 2 mm, 116 x 98, zero-padded to a 128 x 112 k-space matrix), each
seen by ``--coils`` birdcage coils with a smooth phase, at fastMRI's k-space scale (1e-4), with
complex Gaussian k-space noise of ``--noise`` times the coil images' peak; the target is the
root-sum-of-squares of the noise-free coil images cropped to 112 x 96. The anatomy is real, the
coils and the noise are simulated. Then e.g.

    deepinv-lab fit --config configs/modl_fastmri.json --data.init_args.root /tmp/brain_fastmri \\
        --data.init_args.acquisitions null
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import h5py
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from deepinv_lab.data.builtin import split_slices  # noqa: E402
from tests.fastmri_files import write_brain_volume  # noqa: E402

SHAPE = (128, 112)
RECON = (112, 96)


def add_noise(path: Path, noise: float, seed: int) -> None:
    """Complex Gaussian noise of ``noise`` times the peak coil-image magnitude on the k-space."""
    generator = np.random.default_rng(seed)
    with h5py.File(path, "r+") as f:
        kspace = f["kspace"][()]
        images = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(kspace, axes=(-2, -1)),
                                              norm="ortho"), axes=(-2, -1))  # fmt: skip
        sigma = noise * np.abs(images).max() / np.sqrt(2)
        kspace = kspace + sigma * (
            generator.standard_normal(kspace.shape) + 1j * generator.standard_normal(kspace.shape)
        )
        f["kspace"][...] = kspace.astype(np.complex64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--coils", type=int, default=8)
    parser.add_argument("--noise", type=float, default=0.002)
    args = parser.parse_args()
    torch.manual_seed(0)
    for seed, (split, name) in enumerate((("train", "file1.h5"), ("val", "file2.h5"))):
        path = args.out / f"multicoil_{split}" / name
        write_brain_volume(path, list(split_slices(split)), SHAPE, RECON, args.coils)
        add_noise(path, args.noise, seed)
        print(f"{path}: {len(split_slices(split))} slices")


if __name__ == "__main__":
    main()
