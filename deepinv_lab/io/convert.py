"""``deepinv-lab convert``: ISMRMRD raw data to fastMRI-layout HDF5 files.

::

    deepinv-lab convert --input PATH --output DIR [--overwrite] [--calibration merge|drop]

``PATH`` is an ISMRMRD ``.h5`` file or a folder of them (its ``.h5`` files, sorted, hidden files
skipped). Every volume of every file (:func:`~deepinv_lab.io.ismrmrd.read_ismrmrd`: one per
repetition, contrast, phase and set) is written to ``DIR/<name>.h5``
(:func:`~deepinv_lab.io.fastmri_raw.write_fastmri_raw`), a file that
:class:`~deepinv_lab.data.fastmri.FastMRISliceDataset` reads (fully sampled volumes with their
``reconstruction_rss`` target; undersampled ones as test-set files, ``split="test"``). The
input is only read: the output folder must not be the input folder or lie inside it (for one
input file: not the file's folder), and existing output files are replaced only with
``--overwrite``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from deepinv_lab.errors import UserError
from deepinv_lab.io.fastmri_raw import write_fastmri_raw
from deepinv_lab.io.ismrmrd import CALIBRATION_MODES, read_ismrmrd
from deepinv_lab.io.raw import RawVolume


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose mistakes are :class:`UserError` s (one line), not exits."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserError(f"{message} (see deepinv-lab convert --help)")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="deepinv-lab convert",
        description="Convert ISMRMRD raw data (2D Cartesian multi-slice) to fastMRI HDF5 files.",
        exit_on_error=False,
    )
    parser.add_argument(
        "--input", required=True, help="an ISMRMRD .h5 file, or a folder of ISMRMRD .h5 files"
    )
    parser.add_argument("--output", required=True, help="the folder to write <name>.h5 files to")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace existing files in the output folder"
    )
    parser.add_argument(
        "--calibration",
        choices=CALIBRATION_MODES,
        default="merge",
        help="calibration-only (ACS) lines: merge them into the columns the image lines left "
        "empty, or drop them (default: merge)",
    )
    return parser


def input_files(path: Path) -> list[Path]:
    """The ISMRMRD files to convert: ``path`` itself, or the sorted ``.h5`` files of a folder.

    Raises:
        UserError: a missing path, or a folder without ``.h5`` files.
    """
    if path.is_dir():
        files = sorted(
            p for p in path.iterdir() if p.suffix == ".h5" and not p.name.startswith(".")
        )
        if not files:
            raise UserError(f"--input: the folder {path} has no .h5 files")
        return files
    if not path.exists():
        raise UserError(f"--input: {path}: no such file or folder")
    return [path]


def _summary(volume: RawVolume, target: Path) -> str:
    shape = "x".join(str(n) for n in volume.kspace.shape)
    kind = "fully sampled" if volume.fully_sampled else f"acceleration {volume.acceleration:.2f}"
    return (
        f"{target.name}: kspace {shape} (slices x coils x H x W), {kind}, "
        f"{volume.num_low_frequencies} low-frequency columns"
    )


def convert_command(args: list[str]) -> int:
    """Run ``deepinv-lab convert`` (module docstring) with the options ``args``; returns the exit
    status (0; ``--help``: 0).

    Raises:
        UserError: a bad option, an input that cannot be read (naming the file), an output
            folder equal to or inside the input folder, or an existing output file without
            ``--overwrite``.
    """
    parser = _parser()
    try:
        options = parser.parse_args(args)
    except argparse.ArgumentError as error:
        raise UserError(str(error)) from None
    except SystemExit as exit_:  # --help
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else 2
    source = Path(options.input).resolve()
    output = Path(options.output).resolve()
    files = input_files(source)
    folder = source if source.is_dir() else source.parent
    if output == folder or (source.is_dir() and folder in output.parents):
        where = "the input folder or inside it" if source.is_dir() else "the input file's folder"
        raise UserError(
            f"--output {output} is {where} ({folder}); choose a folder outside the input "
            "(the input is never written to)"
        )
    if output.exists() and not output.is_dir():
        raise UserError(f"--output {output} is a file, not a folder")

    output.mkdir(parents=True, exist_ok=True)
    written: dict[Path, Path] = {}
    for file in tqdm(files, desc="convert", unit="file", file=sys.stderr, disable=len(files) < 2):
        volumes = read_ismrmrd(file, calibration=options.calibration)
        targets = [output / f"{volume.name}.h5" for volume in volumes]
        for target, volume in zip(targets, volumes, strict=True):
            if target in written:
                raise UserError(
                    f"{file} and {written[target]} both give the volume {volume.name}; rename "
                    "one of them"
                )
            if target.exists() and not options.overwrite:
                raise UserError(
                    f"{target} exists; give --overwrite to replace it (or another --output)"
                )
        for target, volume in zip(targets, volumes, strict=True):
            write_fastmri_raw(volume, target)
            written[target] = file
            tqdm.write(_summary(volume, target), file=sys.stdout)
        del volumes
    return 0
