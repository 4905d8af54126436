"""``deepinv-lab reconstruct``: run a trained Recon on the user's own files and write the result
in standard formats.

::

    deepinv-lab reconstruct --ckpt_path CKPT --input PATH --output DIR
        [--format nifti,dicom,png,tiff,h5] [--device auto|cpu|cuda|cuda:N] [--batch_size N]
        [--maps auto|espirit|none] [--calibration merge|drop] [--overwrite]

``PATH`` is a file or a folder of them (:mod:`.inputs`): ISMRMRD or fastMRI raw k-space for MRI
Recons, images or volumes for denoising and super-resolution Recons. The Recon is rebuilt from
the config stored in the checkpoint (:mod:`.setup`). Raw volumes are reconstructed in batches of
slices, cropped to the reconstruction matrix of the file, and written with the geometry the file
carries (ISMRMRD slice positions and orientation: NIfTI affine, DICOM position/orientation).

Nothing is written into the input folder, no existing output is replaced without
``--overwrite``, and every file is written whole or not at all.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from deepinv_lab.errors import UserError
from deepinv_lab.inference.images import reconstruct_image
from deepinv_lab.inference.inputs import RAW_KINDS, find_inputs
from deepinv_lab.inference.raw import reconstruct_raw
from deepinv_lab.inference.setup import MAPS_CHOICES, ReconSetup, load_setup
from deepinv_lab.io.raw import RawVolume
from deepinv_lab.io.writers import FORMATS, output_path, write_reconstruction

#: the default output format per input kind
DEFAULT_FORMATS = {"ismrmrd": "nifti", "fastmri": "nifti", "image": "png", "volume": "nifti"}
#: the Recon kind (:func:`~deepinv_lab.inference.setup.recon_kinds`) each input kind needs
NEEDED_KIND = {"ismrmrd": "kspace", "fastmri": "kspace", "image": "image", "volume": "image"}


def reconstruct_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepinv-lab reconstruct",
        description="Reconstruct raw k-space (ISMRMRD, fastMRI HDF5), images or volumes with a "
        "trained checkpoint and write NIfTI, DICOM, PNG, TIFF or fastMRI HDF5 (docs/inference.md).",
    )
    parser.add_argument("--ckpt_path", required=True, help="a checkpoint of deepinv-lab fit")
    parser.add_argument("--input", required=True, help="a file or a folder of files")
    parser.add_argument("--output", required=True, help="the output folder (created)")
    parser.add_argument(
        "--format",
        default=None,
        help=f"comma-separated, of {', '.join(FORMATS)}; default: nifti for k-space and "
        "volumes, png for images",
    )
    parser.add_argument(
        "--device", default="auto", help="auto (the first GPU, else the CPU), cpu, cuda, cuda:N"
    )
    parser.add_argument("--batch_size", type=int, default=8, help="slices per forward pass")
    parser.add_argument(
        "--maps",
        default="auto",
        choices=MAPS_CHOICES,
        help="coil maps for Recons trained with them: ESPIRiT from the ACS (auto: when the "
        "training data gave the Recon maps)",
    )
    parser.add_argument(
        "--calibration",
        default="merge",
        choices=("merge", "drop"),
        help="ISMRMRD calibration-only lines: fill the columns imaging lines did not acquire, "
        "or ignore them",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    return parser


def choose_device(name: str) -> torch.device:
    """``auto``: the first CUDA GPU if there is one, else the CPU; otherwise the device named,
    which must be available."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device: {name!r} is not a device (auto, cpu, cuda, cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name}: no CUDA GPU is available here; use --device cpu")
    return device


def parse_formats(text: str | None) -> list[str] | None:
    if text is None:
        return None
    formats = [part.strip().lower() for part in text.split(",") if part.strip()]
    unknown = [name for name in formats if name not in FORMATS]
    if unknown or not formats:
        raise UserError(f"--format: {text!r}: choose among {', '.join(FORMATS)}")
    return formats


def check_output_folder(input_path: Path, output: Path) -> None:
    """The output folder must not be the input folder (or inside an input folder): the inputs
    are only ever read."""
    source = input_path.resolve()
    folder = source if source.is_dir() else source.parent
    target = output.resolve()
    if target == folder or (source.is_dir() and folder in target.parents):
        where = "the input folder" if target == folder else "inside the input folder"
        raise UserError(
            f"--output {output}: is {where} {folder}; choose another folder (inputs are never "
            "written to)"
        )


class Reconstruction:
    """One ``reconstruct`` run: the checkpoint's Recon, where and how it writes."""

    def __init__(self, setup: ReconSetup, options: argparse.Namespace, device: torch.device):
        self.setup = setup
        self.options = options
        self.device = device
        self.output = Path(options.output)
        self.formats = parse_formats(options.format)
        self.names: dict[str, Path] = {}

    def formats_for(self, kind: str) -> list[str]:
        return self.formats or [DEFAULT_FORMATS[kind]]

    def claim(self, name: str, source: Path, kind: str) -> None:
        """Reserve the output name ``name`` for ``source``; refuse two inputs of one name and
        existing outputs (without ``--overwrite``) before anything is computed."""
        if name in self.names:
            raise UserError(
                f"--input: {source} and {self.names[name]} would both be written as {name!r}; "
                "rename one of them"
            )
        self.names[name] = source
        if self.options.overwrite:
            return
        shape = (1, 1, 1, 1) if kind == "image" else (2, 1, 1)  # one image; several slices
        for format in self.formats_for(kind):
            path = output_path(shape, self.output / name, format)
            if path.exists():
                raise UserError(
                    f"--output: {path} exists; give --overwrite to replace it, or another --output"
                )

    def describe(self, source: Path) -> str:
        return f"--ckpt_path {self.setup.checkpoint} ({self.setup.name}) on {source}"

    def check_kinds(self, inputs: list[tuple[Path, str]]) -> None:
        for source, kind in inputs:
            needed = NEEDED_KIND[kind]
            if needed not in self.setup.kinds:
                what = {"kspace": "k-space", "image": "images"}
                can = (
                    " and ".join(what[k] for k in self.setup.kinds) or "neither k-space nor images"
                )
                raise UserError(
                    f"{self.describe(source)}: the input is {what[needed]} ({kind}), and the "
                    f"checkpoint's {self.setup.name} reconstructs {can}; use a checkpoint of a "
                    f"{'denoising or super-resolution' if needed == 'image' else 'k-space (MRI)'} "
                    "config"
                )

    def write(self, volume: np.ndarray, name: str, kind: str, geometry=None) -> list[Path]:
        written = []
        for format in self.formats_for(kind):
            written += write_reconstruction(
                volume,
                self.output / name,
                format,
                geometry=geometry,
                overwrite=self.options.overwrite,
                series_description=f"deepinv-lab {self.setup.name}",
            )
        return written

    def raw(self, source: Path, kind: str) -> list[Path]:
        if kind == "ismrmrd":
            from deepinv_lab.io.ismrmrd import read_ismrmrd

            volumes = read_ismrmrd(source, calibration=self.options.calibration)
        else:
            from deepinv_lab.io.fastmri_raw import read_fastmri_raw

            volumes = [read_fastmri_raw(source)]
        written = []
        for volume in volumes:
            self.claim(volume.name, source, kind)
            written += self.raw_volume(volume, kind)
        return written

    def raw_volume(self, volume: RawVolume, kind: str) -> list[Path]:
        start = time.perf_counter()
        with tqdm(
            total=volume.num_slices, desc=volume.name, unit="slice", leave=False, file=sys.stderr
        ) as bar:
            images = reconstruct_raw(
                self.setup.recon,
                volume,
                self.device,
                self.options.batch_size,
                self.setup.maps,
                bar.update,
                self.describe(volume.source),
            )
        written = self.write(images, volume.name, kind, volume.geometry)
        seconds = time.perf_counter() - start
        print(
            f"{volume.source.name} -> {describe_written(written)}: {images.shape[0]} "
            f"slices {images.shape[1]}x{images.shape[2]}, acceleration {volume.acceleration:.2f}, "
            f"{seconds:.1f} s"
        )
        return written

    def image(self, source: Path, kind: str) -> list[Path]:
        name = source.name.split(".")[0]
        self.claim(name, source, kind)
        start = time.perf_counter()
        if kind == "image":
            from deepinv_lab.data.image_files import read_image

            data = read_image(source, grayscale=self.setup.grayscale)  # (C, H, W)
        else:
            from deepinv_lab.data.volumes import read_volume

            data = read_volume(source).data[None]  # (1, D, H, W)
        output = reconstruct_image(
            self.setup.recon,
            data,
            self.setup.image_system,
            self.device,
            self.setup.patch_inference,
            self.describe(source),
        )
        # images as (1, C, H, W) for the image writers; volumes (D, H, W) (one channel)
        result = output[None] if kind == "image" else output[0]
        written = self.write(result, name, kind)
        seconds = time.perf_counter() - start
        shape = "x".join(str(n) for n in output.shape[1:])
        print(f"{source.name} -> {describe_written(written)}: {shape}, {seconds:.1f} s")
        return written


def describe_written(paths: list[Path]) -> str:
    """The written files, a series of files in one folder (DICOM, PNG) named by its folder."""
    parts: list[str] = []
    for path in paths:
        if path.suffix in (".dcm", ".png") and path.parent.name and len(paths) > 2:
            folder = f"{path.parent}/ ({sum(p.parent == path.parent for p in paths)} files)"
            if folder not in parts:
                parts.append(folder)
        else:
            parts.append(str(path))
    return ", ".join(parts)


def reconstruct_command(args: list[str]) -> int:
    """Run ``deepinv-lab reconstruct`` (module docstring)."""
    options = reconstruct_parser().parse_args(args)
    if options.batch_size < 1:
        raise UserError(f"--batch_size must be >= 1, got {options.batch_size}")
    parse_formats(options.format)
    inputs = find_inputs(options.input)
    check_output_folder(Path(options.input), Path(options.output))
    device = choose_device(options.device)
    setup = load_setup(options.ckpt_path, options.maps)
    setup.recon.to(device)
    run = Reconstruction(setup, options, device)
    run.check_kinds(inputs)
    Path(options.output).mkdir(parents=True, exist_ok=True)
    written = []
    files = tqdm(inputs, desc="files", unit="file", disable=len(inputs) < 2, file=sys.stderr)
    for source, kind in files:
        written += run.raw(source, kind) if kind in RAW_KINDS else run.image(source, kind)
    print(
        f"deepinv-lab reconstruct: {len(inputs)} inputs, {len(written)} files in {options.output}"
    )
    return 0
