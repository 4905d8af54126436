"""One fastMRI volume's metadata (:class:`VolumeInfo`), read from its file without k-space."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from deepinv_lab.data.fastmri.header import parse_ismrmrd_header
from deepinv_lab.data.fastmri.layout import TARGET_KEYS, FastMRIDataError


@dataclasses.dataclass(frozen=True)
class VolumeInfo:
    """What the index knows about one file, read without touching k-space.

    Attributes:
        path: absolute path of the file.
        num_slices: number of slices.
        kspace_shape: one slice's k-space shape, ``(coils, H, W)`` or ``(H, W)`` (singlecoil).
        encoding_size, recon_size, padding_left, padding_right: from the header
            (:func:`~deepinv_lab.data.fastmri.header.parse_ismrmrd_header`).
        target_shapes: one slice's shape ``(rh, rw)`` of each reconstruction dataset present
            (``reconstruction_rss``, ``reconstruction_esc``).
        has_mask: the file holds a ``mask`` (a test-set file, k-space already undersampled).
        datasets: the names of the file's datasets (for error messages).
        attrs: the HDF5 attributes (``max``, ``norm``, ``acquisition``, ``patient_id``, ...) as
            plain JSON values.
    """

    path: str
    num_slices: int
    kspace_shape: tuple[int, ...]
    encoding_size: tuple[int, int, int]
    recon_size: tuple[int, int, int]
    padding_left: int
    padding_right: int
    target_shapes: dict[str, tuple[int, ...]]
    has_mask: bool
    datasets: tuple[str, ...]
    attrs: dict[str, Any]

    @property
    def acquisition(self) -> str:
        return str(self.attrs.get("acquisition", ""))

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VolumeInfo:
        data = dict(data)
        for key in ("kspace_shape", "encoding_size", "recon_size", "datasets"):
            data[key] = tuple(data[key])
        data["target_shapes"] = {k: tuple(v) for k, v in data["target_shapes"].items()}
        return cls(**data)


def _json_value(value: Any) -> Any:
    """An HDF5 attribute as a JSON value (None when it has no simple equivalent)."""
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray):
        return value.tolist() if value.size <= 64 else None
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (str, int, float, bool)):
        return value
    return None


def _missing_key(path: str, key: str, keys: Sequence[str], hint: str = "") -> FastMRIDataError:
    return FastMRIDataError(
        f"{path}: no dataset {key!r} (the file has {sorted(keys)}); this is not a complete "
        f"fastMRI file{hint}"
    )


def read_volume_info(path: str | Path) -> VolumeInfo:
    """Index one fastMRI file: its header, dataset shapes and attributes (no k-space is read).

    Raises:
        FastMRIDataError: the file is not readable HDF5 (corrupt or truncated), lacks ``kspace``
            or ``ismrmrd_header``, or its header cannot be parsed; the message names the file.
    """
    path = str(Path(path).absolute())
    try:
        with h5py.File(path, "r") as f:
            keys = list(f.keys())
            for key in ("kspace", "ismrmrd_header"):
                if key not in f:
                    raise _missing_key(path, key, keys)
            kspace = f["kspace"]
            if kspace.ndim not in (3, 4) or not np.issubdtype(kspace.dtype, np.complexfloating):
                raise FastMRIDataError(
                    f"{path}: 'kspace' must be complex (slices, coils, H, W) or (slices, H, W), "
                    f"got dtype {kspace.dtype} with shape {kspace.shape}"
                )
            geometry = parse_ismrmrd_header(f["ismrmrd_header"][()], path)
            target_shapes = {
                key: tuple(int(n) for n in f[key].shape[1:])
                for key in TARGET_KEYS.values()
                if key in f
            }
            for key in target_shapes:
                if f[key].shape[0] != kspace.shape[0]:
                    raise FastMRIDataError(
                        f"{path}: {key!r} has {f[key].shape[0]} slices but 'kspace' has "
                        f"{kspace.shape[0]}"
                    )
            attrs = {str(k): _json_value(v) for k, v in f.attrs.items()}
            return VolumeInfo(
                path=path,
                num_slices=int(kspace.shape[0]),
                kspace_shape=tuple(int(n) for n in kspace.shape[1:]),
                target_shapes=target_shapes,
                has_mask="mask" in f,
                datasets=tuple(sorted(keys)),
                attrs={k: v for k, v in attrs.items() if v is not None},
                **geometry,
            )
    except FastMRIDataError:
        raise
    except (OSError, KeyError, ValueError, RuntimeError, TypeError) as error:
        raise FastMRIDataError(
            f"{path}: cannot be read as a fastMRI HDF5 file ({type(error).__name__}: {error}); "
            "it is probably corrupt or truncated -- re-download it, or move it out of the "
            "folder (or leave it out of the list of files)"
        ) from error
