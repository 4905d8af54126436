"""Writing a :class:`RawVolume` as a fastMRI-layout HDF5 file, and reading fastMRI files back
(the layout: :mod:`deepinv_lab.data.fastmri.layout`).

A written file holds ``kspace`` ``(S, C, H, W)`` complex64 and ``ismrmrd_header`` (the XML
bytes). An undersampled volume is written as a fastMRI test-set file: ``mask`` ``(W,)`` (bool,
as fastMRI's) and the attributes ``num_low_frequency`` and ``acceleration``. A fully sampled one
gets the multicoil target ``reconstruction_rss`` ``(S, h, w)`` float32, the root-sum-of-squares
over coils of the centred orthonormal inverse 2D FFT images cropped to ``recon_size``, with the
attributes ``max`` and ``norm`` of that target. Both get ``acquisition`` and ``patient_id``, and
``deepinv_lab_geometry`` (:meth:`SliceGeometry.to_json`) when the geometry is known. Files are
written atomically: a temporary file in the same folder, then ``os.replace``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import h5py
import numpy as np
import torch

from deepinv_lab.data.fastmri.volumes import read_volume_info
from deepinv_lab.errors import UserError
from deepinv_lab.functional import center_crop, ifft2c, rss
from deepinv_lab.io.geometry import SliceGeometry
from deepinv_lab.io.ismrmrd import central_run_width
from deepinv_lab.io.raw import RawVolume

#: the attribute holding the slice geometry (JSON), absent from fastMRI's own files
GEOMETRY_ATTRIBUTE = "deepinv_lab_geometry"


def rss_target(kspace: np.ndarray, recon_size: tuple[int, int]) -> np.ndarray:
    """``(S, h, w)`` float32: the RSS over coils of the centred orthonormal inverse 2D FFT of
    ``kspace`` ``(S, C, H, W)``, centre-cropped to ``recon_size`` (clipped to ``(H, W)``)."""
    height, width = kspace.shape[-2:]
    crop = (min(int(recon_size[0]), height), min(int(recon_size[1]), width))
    images = [
        rss(center_crop(ifft2c(torch.from_numpy(np.ascontiguousarray(k))), crop), dim=0)
        for k in kspace
    ]
    return torch.stack(images).numpy().astype(np.float32)


def write_fastmri_raw(volume: RawVolume, path: str | Path) -> None:
    """Write ``volume`` as a fastMRI-layout HDF5 file at ``path`` (module docstring), atomically;
    creates the folder. An existing file at ``path`` is replaced.

    Raises:
        UserError: the k-space is not ``(S, C, H, W)`` or the mask does not match its ``W``.
    """
    path = Path(path)
    kspace = np.asarray(volume.kspace)
    mask = np.asarray(volume.mask).reshape(-1)
    if kspace.ndim != 4 or mask.size != kspace.shape[-1]:
        raise UserError(
            f"{path}: cannot write volume {volume.name}: k-space must be (S, C, H, W) with a "
            f"(W,) mask, got {kspace.shape} and mask {mask.shape}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(descriptor)
    try:
        with h5py.File(temporary, "w") as f:
            f.create_dataset("kspace", data=kspace.astype(np.complex64, copy=False))
            f.create_dataset("ismrmrd_header", data=np.bytes_(volume.header.encode("utf-8")))
            if volume.fully_sampled:
                target = volume.target
                if target is None:
                    target = rss_target(kspace, volume.recon_size)
                target = np.asarray(target, dtype=np.float32)
                f.create_dataset("reconstruction_rss", data=target)
                f.attrs["max"] = float(target.max()) if target.size else 0.0
                f.attrs["norm"] = float(np.linalg.norm(target))
            else:
                f.create_dataset("mask", data=mask > 0)
                f.attrs["num_low_frequency"] = int(volume.num_low_frequencies)
                f.attrs["acceleration"] = float(volume.acceleration)
            f.attrs["acquisition"] = volume.acquisition
            f.attrs["patient_id"] = ""
            if volume.geometry is not None:
                f.attrs[GEOMETRY_ATTRIBUTE] = volume.geometry.to_json()
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _text(value: object) -> str:
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0] if value.size else b""
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def read_fastmri_raw(path: str | Path) -> RawVolume:
    """Read a fastMRI-layout file: one written by :func:`write_fastmri_raw`, or any fastMRI
    multicoil (``(S, C, H, W)``) or singlecoil (``(S, H, W)``, read as one coil) file.

    ``recon_size`` comes from the header's ``reconSpace``; ``target`` from
    ``reconstruction_rss`` (or ``reconstruction_esc``) when present; the mask is the stored
    ``mask``, else the columns with nonzero k-space in the first slice; the geometry is None
    unless the file was written by :func:`write_fastmri_raw` with one. The file is opened
    read-only.

    Raises:
        UserError: naming the file: missing, not a readable fastMRI file (no ``kspace`` or
            ``ismrmrd_header``, an unparsable header).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    info = read_volume_info(path)  # checks the layout; raises FastMRIDataError naming the file
    try:
        with h5py.File(path, "r") as f:
            kspace = np.asarray(f["kspace"][()], dtype=np.complex64)
            header = _text(f["ismrmrd_header"][()])
            target = None
            for key in ("reconstruction_rss", "reconstruction_esc"):
                if key in f:
                    target = np.asarray(f[key][()], dtype=np.float32)
                    break
            stored_mask = np.asarray(f["mask"][()]).reshape(-1) if "mask" in f else None
            attrs = dict(f.attrs)
    except (OSError, KeyError, ValueError, TypeError) as error:
        raise UserError(
            f"{path}: cannot be read as a fastMRI file ({type(error).__name__}: {error})"
        ) from None
    if kspace.ndim == 3:
        kspace = kspace[:, None]
    if stored_mask is not None:
        mask = (stored_mask.astype(np.float32) > 0).astype(np.float32)
        if mask.size != kspace.shape[-1]:
            raise UserError(
                f"{path}: 'mask' has {mask.size} entries but k-space has {kspace.shape[-1]} "
                "phase-encode columns"
            )
    else:
        mask = (np.abs(kspace[0]).sum(axis=(0, 1)) > 0).astype(np.float32)
    if "num_low_frequency" in attrs:
        num_low = int(np.asarray(attrs["num_low_frequency"]).reshape(-1)[0])
    else:
        num_low = central_run_width(mask)
    geometry = None
    if GEOMETRY_ATTRIBUTE in attrs:
        try:
            geometry = SliceGeometry.from_json(_text(attrs[GEOMETRY_ATTRIBUTE]))
        except (ValueError, TypeError, KeyError) as error:
            raise UserError(
                f"{path}: the attribute {GEOMETRY_ATTRIBUTE!r} is not a valid geometry ({error})"
            ) from None
    return RawVolume(
        kspace=kspace,
        mask=mask,
        num_low_frequencies=num_low,
        header=header,
        recon_size=(int(info.recon_size[0]), int(info.recon_size[1])),
        geometry=geometry,
        name=path.stem,
        source=path,
        acquisition=_text(attrs.get("acquisition", "")),
        target=target,
    )
