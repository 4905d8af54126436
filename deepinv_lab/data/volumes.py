"""Reading 3-D volumes from files: NumPy ``.npy``, multi-page TIFF stacks (``.tif``, ``.tiff``) and
NIfTI (``.nii``, ``.nii.gz``).

Conventions (``docs/data.md``, "Volumes (3D)"):

* **Axes**: a volume is a float32 array ``(D, H, W)``, its axes as stored: ``.npy`` arrays as
  saved, TIFF stacks ``(pages, rows, columns)``, NIfTI voxel axes ``(i, j, k)``, with the NIfTI
  affine (voxel ``(i, j, k, 1)`` to world millimetres) kept in :attr:`Volume.affine`.
* **Intensities**: ``uint8`` and ``uint16`` volumes are divided by 255 and 65535 (as the image
  folders, :mod:`deepinv_lab.data.image_files`), booleans become 0/1, other types are converted
  to float32 unchanged (NIfTI after its ``scl_slope``/``scl_inter`` scaling).
* **Shape**: trailing length-1 axes beyond the third are dropped (a NIfTI ``(X, Y, Z, 1)``);
  anything else that is not 3-D, or a file that cannot be read, raises a
  :class:`~deepinv_lab.errors.UserError` naming the file (and its shape).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepinv_lab.errors import UserError

#: File extensions read as volumes (compared case-insensitively).
VOLUME_EXTENSIONS: tuple[str, ...] = (".npy", ".tif", ".tiff", ".nii", ".nii.gz")
_TIFF = (".tif", ".tiff")
_NIFTI = (".nii", ".nii.gz")


@dataclass(frozen=True)
class Volume:
    """A volume read from a file: ``data`` float32 ``(D, H, W)``; ``affine`` the ``(4, 4)``
    voxel-to-world matrix of NIfTI files, else None."""

    data: np.ndarray
    affine: np.ndarray | None = None


def volume_suffix(path: str | os.PathLike, extensions: Sequence[str] = VOLUME_EXTENSIONS) -> str:
    """The volume extension that ends ``path`` (longest match, lower case; ``".nii.gz"`` before
    ``".gz"``), or ``""`` if none does."""
    name = Path(path).name.lower()
    matches = [ext.lower() for ext in extensions if name.endswith(ext.lower())]
    return max(matches, key=len) if matches else ""


def volume_stem(path: str | os.PathLike) -> str:
    """The file name without its volume extension (``"0001x4.nii.gz"`` -> ``"0001x4"``)."""
    name = Path(path).name
    suffix = volume_suffix(name)
    return name[: len(name) - len(suffix)] if suffix else Path(name).stem


def find_volumes(
    root: str | os.PathLike, extensions: Sequence[str] = VOLUME_EXTENSIONS
) -> list[Path]:
    """The volume files under ``root`` (recursively, sorted by relative POSIX path; names starting
    with ``.`` skipped).

    Raises:
        UserError: ``root`` is not a folder, or holds no volume file.
    """
    base = Path(root).expanduser()
    if not base.is_dir():
        raise UserError(f"{str(root)!r} does not exist or is not a folder")
    found = []
    for directory, folders, files in os.walk(base, followlinks=True):
        folders[:] = [name for name in folders if not name.startswith(".")]
        for name in files:
            if not name.startswith(".") and volume_suffix(name, extensions):
                found.append(Path(directory) / name)
    if not found:
        raise UserError(
            f"no volume file ({', '.join(extensions)}) under {str(base)!r}; check the folder "
            "and the extensions"
        )
    return sorted(found, key=lambda path: path.relative_to(base).as_posix())


def _kind(path: Path) -> str:
    suffix = volume_suffix(path)
    if suffix == ".npy":
        return "npy"
    if suffix in _TIFF:
        return "tiff"
    if suffix in _NIFTI:
        return "nifti"
    raise UserError(f"{str(path)!r}: not a volume file (extensions {', '.join(VOLUME_EXTENSIONS)})")


def _as_3d(shape: Sequence[int], path: Path) -> tuple[int, int, int]:
    """``shape`` without trailing length-1 axes beyond the third, checked to be 3-D."""
    shape = tuple(int(n) for n in shape)
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) != 3:
        dims = " x ".join(map(str, shape)) or "a scalar"
        raise UserError(
            f"{str(path)!r} holds an array of shape ({dims}), not a 3-D volume (D, H, W)"
        )
    return shape  # type: ignore[return-value]


def _unreadable(path: Path, error: Exception) -> UserError:
    return UserError(f"cannot read the volume {str(path)!r}: {type(error).__name__}: {error}")


def volume_shape(path: str | os.PathLike) -> tuple[int, int, int]:
    """``(D, H, W)`` of a volume file from its header only (cheap: no voxel data is read).

    Raises:
        UserError: the file cannot be read, or does not hold a 3-D volume.
    """
    path = Path(path)
    kind = _kind(path)
    try:
        if kind == "npy":
            shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
        elif kind == "tiff":
            import tifffile

            with tifffile.TiffFile(path) as tiff:
                shape = tiff.series[0].shape
        else:
            import nibabel

            shape = nibabel.load(path).shape
    except UserError:
        raise
    except Exception as error:  # any reader's failure on a user file: name the file
        raise _unreadable(path, error) from error
    return _as_3d(shape, path)


def _to_float32(data: np.ndarray, path: Path) -> np.ndarray:
    if data.dtype == np.uint8:
        return data.astype(np.float32) / 255.0
    if data.dtype == np.uint16:
        return data.astype(np.float32) / 65535.0
    if data.dtype == bool or np.issubdtype(data.dtype, np.number):
        if np.iscomplexobj(data):
            raise UserError(f"{str(path)!r} holds complex values ({data.dtype}); expected real")
        return data.astype(np.float32)
    raise UserError(f"{str(path)!r} holds values of type {data.dtype}, not numbers")


def read_volume(path: str | os.PathLike) -> Volume:
    """A volume file as a float32 ``(D, H, W)`` array (module docstring) and its affine.

    Raises:
        UserError: the file cannot be read, or does not hold a real 3-D volume (the message names
            the file and the shape it holds).
    """
    path = Path(path)
    kind = _kind(path)
    affine = None
    try:
        if kind == "npy":
            data = np.load(path, allow_pickle=False)
        elif kind == "tiff":
            import tifffile

            data = tifffile.imread(path)
        else:
            import nibabel

            image = nibabel.load(path)
            data = np.asanyarray(image.dataobj)
            affine = np.asarray(image.affine, dtype=np.float64)
    except Exception as error:  # any reader's failure on a user file: name the file
        raise _unreadable(path, error) from error
    shape = _as_3d(data.shape, path)
    data = _to_float32(np.asarray(data), path).reshape(shape)
    return Volume(np.ascontiguousarray(data), affine)
