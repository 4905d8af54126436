"""What ``deepinv-lab reconstruct`` reads: the files of ``--input`` and their kind.

Kinds, by content for HDF5 and by extension otherwise:

* ``"ismrmrd"``: an ISMRMRD HDF5 file (a group holding ``data``, e.g. ``dataset/data``);
* ``"fastmri"``: a fastMRI HDF5 file (a ``kspace`` dataset);
* ``"image"``: a 2D image (PNG, JPEG, BMP, TIFF), for denoising and super-resolution Recons;
* ``"volume"``: a volume (``.npy``, NIfTI), for 3D image Recons.

Both raw kinds are read as :class:`~deepinv_lab.io.raw.RawVolume` (one per repetition/contrast
of an ISMRMRD file).
"""

from __future__ import annotations

from pathlib import Path

import h5py

from deepinv_lab.data.volumes import volume_suffix
from deepinv_lab.errors import UserError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
VOLUME_INPUT_EXTENSIONS = (".npy", ".nii", ".nii.gz")
HDF5_EXTENSIONS = (".h5", ".hdf5", ".mrd")
RAW_KINDS = ("ismrmrd", "fastmri")


def file_kind(path: Path) -> str | None:
    """The kind of the file ``path`` (module docstring), or None for a file that is not input
    (another extension). A ``.h5`` file that is neither ISMRMRD nor fastMRI raises a
    UserError naming it and what it holds."""
    name = path.name.lower()
    if name.endswith(HDF5_EXTENSIONS):
        return _hdf5_kind(path)
    if volume_suffix(path, VOLUME_INPUT_EXTENSIONS):
        return "volume"
    if name.endswith(IMAGE_EXTENSIONS):
        return "image"
    return None


def _hdf5_kind(path: Path) -> str:
    try:
        with h5py.File(path, "r") as file:
            keys = list(file.keys())
            if "kspace" in file:
                return "fastmri"
            if any(isinstance(file[key], h5py.Group) and "data" in file[key] for key in keys):
                return "ismrmrd"
    except OSError as error:
        raise UserError(f"--input: {path}: not a readable HDF5 file ({error})") from None
    raise UserError(
        f"--input: {path}: neither ISMRMRD raw data (a group with 'data', e.g. dataset/data) "
        f"nor a fastMRI file (a 'kspace' dataset); it holds {keys}"
    )


def find_inputs(path: str | Path) -> list[tuple[Path, str]]:
    """``(file, kind)`` of the input ``path``: the file itself, or the input files of a folder
    (not its sub-folders; hidden files skipped), sorted by name.

    Raises:
        UserError: ``path`` is missing, a file of no input kind, or a folder with no input
            file, naming it.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"--input: {path}: no such file or folder")
    if path.is_file():
        kind = file_kind(path)
        if kind is None:
            raise UserError(
                f"--input: {path}: not an input file (ISMRMRD or fastMRI .h5, an image "
                f"{'/'.join(IMAGE_EXTENSIONS)}, or a volume {'/'.join(VOLUME_INPUT_EXTENSIONS)})"
            )
        return [(path, kind)]
    found = []
    for child in sorted(path.iterdir()):
        if child.name.startswith(".") or not child.is_file():
            continue
        kind = file_kind(child)
        if kind is not None:
            found.append((child, kind))
    if not found:
        raise UserError(
            f"--input: {path}: no input file in this folder (ISMRMRD or fastMRI .h5, images, "
            "volumes)"
        )
    return found
