"""Writing reconstructions in standard formats: NIfTI-1, a DICOM MR series, PNG or TIFF images
and fastMRI's submission HDF5.

Conventions:

* **Arrays**: a stack of 2D slices is ``(S, H, W)`` (:mod:`deepinv_lab.io.geometry`: ``H`` along
  ``read_dir``, ``W`` along ``phase_dir``); a single slice may be ``(H, W)``. The image writers
  (:func:`write_images`) also take batches of images ``(N, C, H, W)``, ``C`` 1 (grey) or 3
  (RGB), as the image systems (denoising, super-resolution) produce them; a 3-D array is always a
  stack ``(S, H, W)``, so a single colour image is ``(1, 3, H, W)``. Values must be real and
  finite (take the magnitude of complex images first); NumPy arrays and CPU/GPU tensors are
  accepted.
* **Geometry**: with a :class:`~deepinv_lab.io.geometry.SliceGeometry` the NIfTI affine and the
  DICOM Image Plane attributes place every pixel at the same scanner position (LPS for DICOM,
  RAS for NIfTI); without one, NIfTI has a 1 mm identity affine with codes 0 (unknown) and DICOM
  an identity orientation, 1 mm pixels and slices at ``z = 0, 1, ...`` mm.
* **Files** are written atomically: to a hidden temporary name in the target folder, then
  ``os.replace``; a folder of files (a DICOM series, a PNG stack) is filled as a hidden
  temporary folder, then renamed. Existing outputs are replaced only with ``overwrite=True``,
  and a folder only when it holds nothing but files of the same kind of output (``IM_0001.dcm``,
  ``0001.png``, ...); otherwise a :class:`~deepinv_lab.errors.UserError` names the file.

:func:`write_reconstruction` picks the writer of a format name (:data:`FORMATS`) and the output
name from a path stem.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
import secrets
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deepinv_lab.errors import UserError
from deepinv_lab.io.geometry import SliceGeometry

#: The format names of :func:`write_reconstruction`.
FORMATS: tuple[str, ...] = ("nifti", "dicom", "png", "tiff", "h5")

#: MR Image Storage.
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
#: The largest stored DICOM pixel value (unsigned 16 bits).
DICOM_MAX = 65535
#: ``layout`` values of :func:`write_nifti`.
NIFTI_LAYOUTS: tuple[str, ...] = ("slices", "volume")
#: ``scale`` values of :func:`write_images`.
IMAGE_SCALES: tuple[str, ...] = ("auto", "unit", "max")

_NIFTI_SUFFIXES = (".nii.gz", ".nii")
_TIFF_SUFFIXES = (".tiff", ".tif")
_DICOM_FILE = re.compile(r"IM_\d{4,}\.dcm")
_PNG_FILE = re.compile(r"\d{4,}\.png")
#: Format-specific keyword arguments that :func:`write_reconstruction` passes on.
_OPTIONS: dict[str, tuple[str, ...]] = {
    "nifti": ("affine", "layout"),
    "dicom": (
        "series_description",
        "patient_name",
        "patient_id",
        "study_uid",
        "series_uid",
        "series_number",
    ),
    "png": ("scale",),
    "tiff": (),
    "h5": (),
}


# --------------------------------------------------------------------------------------------
# Arrays and files
# --------------------------------------------------------------------------------------------


def _as_array(volume: Any) -> np.ndarray:
    """``volume`` (an array or a tensor) as a real, finite float64 NumPy array."""
    if hasattr(volume, "detach"):  # a torch tensor, on any device
        volume = volume.detach().cpu().numpy()
    array = np.asarray(volume)
    if np.iscomplexobj(array):
        raise ValueError("cannot write complex images: take their magnitude (abs) first")
    array = array.astype(np.float64, copy=False)
    if not np.all(np.isfinite(array)):
        raise ValueError("cannot write images with NaN or infinite values")
    return array


def _as_stack(volume: Any) -> np.ndarray:
    """``(H, W)`` or ``(S, H, W)`` as float64 ``(S, H, W)``."""
    array = _as_array(volume)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or 0 in array.shape:
        raise ValueError(f"expected slices (S, H, W) or an image (H, W), got shape {array.shape}")
    return array


def _check_geometry(geometry: SliceGeometry, num_slices: int) -> None:
    if geometry.num_slices != num_slices:
        raise ValueError(
            f"the geometry has {geometry.num_slices} slice positions for {num_slices} slices"
        )


def _refuse_existing(path: Path) -> UserError:
    return UserError(f"{str(path)!r} already exists; remove it or allow overwriting to replace it")


def _check_file_target(path: Path, overwrite: bool) -> None:
    """Refuse an existing ``path`` unless ``overwrite``, and a folder in its place always."""
    if path.is_dir():
        raise UserError(f"{str(path)!r} is a folder; cannot replace it with a file")
    if path.exists() and not overwrite:
        raise _refuse_existing(path)


def _check_folder_target(folder: Path, overwrite: bool, pattern: re.Pattern[str]) -> None:
    """Refuse an existing ``folder`` unless ``overwrite`` and it holds only files whose names
    match ``pattern`` (an earlier output of the same kind)."""
    if not folder.exists():
        return
    if not folder.is_dir():
        raise UserError(f"{str(folder)!r} exists and is not a folder; remove it first")
    if not overwrite:
        raise _refuse_existing(folder)
    for entry in folder.iterdir():
        if not (entry.is_file() and pattern.fullmatch(entry.name)):
            raise UserError(
                f"{str(folder)!r} holds {entry.name!r}, which is not part of an earlier output; "
                "remove the folder yourself to replace it"
            )


def _hidden_name(path: Path, suffix: str = "") -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{suffix}")


@contextlib.contextmanager
def _atomic_file(path: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a hidden temporary path next to ``path`` (ending with ``suffix``, for writers that
    choose a format by the name); move it onto ``path`` if the block succeeds, else remove it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _hidden_name(path, suffix)
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _atomic_folder(folder: Path) -> Iterator[Path]:
    """Yield a new hidden temporary folder next to ``folder``; rename it to ``folder`` if the
    block succeeds (an existing ``folder``, checked by :func:`_check_folder_target`, is moved
    aside first and removed after), else remove it."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    temporary = _hidden_name(folder)
    temporary.mkdir()
    try:
        yield temporary
        if folder.exists():
            old = _hidden_name(folder, ".old")
            os.rename(folder, old)
            try:
                os.rename(temporary, folder)
            except BaseException:
                os.rename(old, folder)
                raise
            shutil.rmtree(old)
        else:
            os.rename(temporary, folder)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def _nifti_suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in _NIFTI_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    raise ValueError(f"{str(path)!r}: a NIfTI file name ends with .nii or .nii.gz")


# --------------------------------------------------------------------------------------------
# NIfTI
# --------------------------------------------------------------------------------------------


def write_nifti(
    volume: Any,
    path: str | os.PathLike,
    geometry: SliceGeometry | None = None,
    *,
    affine: np.ndarray | None = None,
    layout: str = "slices",
    overwrite: bool = False,
) -> Path:
    """Write ``volume`` as a NIfTI-1 file, ``.nii`` or gzipped ``.nii.gz`` (by ``path``'s
    suffix), float32.

    Args:
        volume: with ``layout="slices"`` a stack ``(S, H, W)`` (or one slice ``(H, W)``), stored
            as ``(H, W, S)`` so that voxel ``(h, w, s)`` maps through
            ``geometry.affine((H, W))``; with ``layout="volume"`` a 3-D volume ``(D, H, W)``
            (3D reconstructions) stored with its axes as given, voxel ``(i, j, k) = (d, h, w)``,
            as :mod:`deepinv_lab.data.volumes` reads NIfTI back.
        path: the file (``.nii`` or ``.nii.gz``).
        geometry: where the slices lie (``layout="slices"`` only): sform and qform from its RAS
            affine, codes 1 (scanner).
        affine: a ``(4, 4)`` voxel-to-RAS matrix to use instead (e.g. the
            :attr:`~deepinv_lab.data.volumes.Volume.affine` of the input volume), codes 1.
            Without ``geometry`` and ``affine``: the 1 mm identity, codes 0 (unknown; readers
            then use only the voxel sizes).
        layout: ``"slices"`` or ``"volume"`` (above).
        overwrite: replace an existing ``path``.

    Returns:
        ``path``.

    Raises:
        UserError: ``path`` exists and not ``overwrite``.
        ValueError: a wrong shape, suffix or layout, both ``geometry`` and ``affine``, or a
            geometry with another number of slices.
    """
    import nibabel as nib

    path = Path(path)
    suffix = _nifti_suffix(path)
    if layout not in NIFTI_LAYOUTS:
        raise ValueError(f"layout must be one of {NIFTI_LAYOUTS}, got {layout!r}")
    if geometry is not None and affine is not None:
        raise ValueError("give geometry or affine, not both")
    if layout == "slices":
        stack = _as_stack(volume)
        data = stack.transpose(1, 2, 0)
        if geometry is not None:
            _check_geometry(geometry, stack.shape[0])
            affine = geometry.affine(stack.shape[1:], ras=True)
    else:
        if geometry is not None:
            raise ValueError('a slice geometry needs layout="slices"')
        data = _as_array(volume)
        if data.ndim != 3 or 0 in data.shape:
            raise ValueError(f"expected a volume (D, H, W), got shape {data.shape}")
    code = 0 if affine is None else 1
    matrix = np.eye(4) if affine is None else np.asarray(affine, dtype=np.float64)
    if matrix.shape != (4, 4) or not np.all(np.isfinite(matrix)):
        raise ValueError(f"affine must be a finite 4x4 matrix, got shape {matrix.shape}")
    _check_file_target(path, overwrite)

    image = nib.Nifti1Image(np.asarray(data, dtype=np.float32), matrix)
    image.set_sform(matrix, code=code)
    image.set_qform(matrix, code=code)
    image.header.set_xyzt_units(xyz="mm")
    with _atomic_file(path, suffix) as temporary:
        nib.save(image, temporary)
    return path


# --------------------------------------------------------------------------------------------
# DICOM
# --------------------------------------------------------------------------------------------


def _ds(value: float) -> str:
    """``value`` as a DICOM decimal string (at most 16 characters)."""
    from pydicom.valuerep import format_number_as_ds

    return format_number_as_ds(float(value))


def _ds_list(values: Sequence[float]) -> list[str]:
    # round off floating-point dust (1e-17) so that unit vectors read as such
    return [_ds(0.0 if abs(v) < 1e-12 else v) for v in values]


def dicom_rescale(volume: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Quantise ``volume`` to unsigned 16 bits for DICOM: ``(stored, slope, intercept)`` with
    ``stored * slope + intercept`` equal to ``volume`` within ``slope / 2``.

    The stored range ``[0, 65535]`` spans ``[min(volume.min(), 0), max(volume.max(), 0)]``, so
    that 0 (a magnitude image's background) stays exactly 0 and nonnegative images have
    intercept 0. ``slope`` and ``intercept`` are rounded to DICOM decimal strings before
    quantising, so the stored values fit them exactly.
    """
    low = min(float(volume.min()), 0.0)
    high = max(float(volume.max()), 0.0)
    if high == low:  # all zeros
        return np.zeros(volume.shape, dtype=np.uint16), 1.0, 0.0
    intercept = float(_ds(low))
    slope = float(_ds((high - low) / DICOM_MAX))
    stored = np.rint((volume - intercept) / slope)
    return np.clip(stored, 0, DICOM_MAX).astype(np.uint16), slope, intercept


def _default_geometry(shape: Sequence[int]) -> SliceGeometry:
    """Identity orientation (rows along x, columns along y), 1 mm pixels and slices, pixel
    ``(0, 0)`` of slice ``s`` at ``(0, 0, s)`` mm."""
    num_slices, height, width = shape
    centre = np.array([width // 2, height // 2, 0.0])
    positions = centre + np.outer(np.arange(num_slices), [0.0, 0.0, 1.0])
    return SliceGeometry(
        positions=positions,
        read_dir=(0.0, 1.0, 0.0),
        phase_dir=(1.0, 0.0, 0.0),
        slice_dir=(0.0, 0.0, 1.0),
        pixel_spacing=(1.0, 1.0),
        slice_thickness=1.0,
    )


def _implementation_uid() -> str:
    from pydicom.uid import generate_uid

    return generate_uid(entropy_srcs=["deepinv-lab implementation"])


def write_dicom_series(
    volume: Any,
    folder: str | os.PathLike,
    geometry: SliceGeometry | None = None,
    *,
    series_description: str = "deepinv-lab reconstruction",
    patient_name: str = "",
    patient_id: str = "",
    study_uid: str | None = None,
    series_uid: str | None = None,
    series_number: int = 1,
    overwrite: bool = False,
) -> list[Path]:
    """Write a stack ``(S, H, W)`` (or one slice ``(H, W)``) as a DICOM MR Image Storage series:
    ``folder/IM_0001.dcm``, ... one file per slice in the stack's order, explicit VR little
    endian with file meta information.

    Pixels are unsigned 16-bit (``H`` rows, ``W`` columns) with one ``RescaleSlope`` and
    ``RescaleIntercept`` for the series (:func:`dicom_rescale`): ``pixel_array * slope +
    intercept`` gives the volume's values back within half a quantisation step. The window
    (``VOILUTFunction`` ``LINEAR_EXACT``) spans the volume's range.

    With ``geometry``: ``PixelSpacing`` ``[along H, along W]``, ``ImageOrientationPatient``
    ``phase_dir`` (the direction of increasing column index) then ``read_dir`` (increasing row
    index), ``ImagePositionPatient`` ``geometry.corner(s, (H, W))`` (LPS, as DICOM's patient
    system), ``SliceLocation`` its component along the plane's normal, ``SliceThickness``,
    ``SpacingBetweenSlices``. Without: the identity orientation, 1 mm, slices at ``z = s`` mm.

    Args:
        volume: the slices.
        folder: the series' folder (created; its parent too).
        geometry: where the slices lie, or None.
        series_description, patient_name, patient_id: written as given (the patient's type 2
            attributes may be empty).
        study_uid, series_uid: UIDs to reuse (e.g. to put several series into one study); new
            ones by default.
        series_number: ``SeriesNumber``.
        overwrite: replace an existing ``folder`` holding an earlier series (only
            ``IM_*.dcm`` files).

    Returns:
        The files, in slice order.

    Raises:
        UserError: ``folder`` exists and not ``overwrite``, or holds other files.
        ValueError: a wrong shape, or a geometry with another number of slices.
    """
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder = Path(folder)
    stack = _as_stack(volume)
    num_slices, height, width = stack.shape
    if geometry is None:
        geometry = _default_geometry(stack.shape)
        acquisition_type = ""
    else:
        _check_geometry(geometry, num_slices)
        acquisition_type = "2D"
    _check_folder_target(folder, overwrite, _DICOM_FILE)

    stored, slope, intercept = dicom_rescale(stack)
    low, high = float(stack.min()), float(stack.max())
    row_dir, column_dir = geometry.phase_dir, geometry.read_dir
    normal = np.cross(row_dir, column_dir)
    orientation = _ds_list([*row_dir, *column_dir])
    now = datetime.datetime.now()
    date, time = now.strftime("%Y%m%d"), now.strftime("%H%M%S.%f")
    study_uid = study_uid or generate_uid()
    series_uid = series_uid or generate_uid()
    frame_uid = generate_uid()
    implementation_uid = _implementation_uid()
    digits = max(4, len(str(num_slices)))

    paths = []
    with _atomic_folder(folder) as temporary:
        for index in range(num_slices):
            instance_uid = generate_uid()
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = MR_IMAGE_STORAGE
            meta.MediaStorageSOPInstanceUID = instance_uid
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            meta.ImplementationClassUID = implementation_uid
            meta.ImplementationVersionName = "DEEPINV_LAB"
            dataset = _mr_dataset(
                meta,
                {
                    # SOP common
                    "SpecificCharacterSet": "ISO_IR 192",
                    "SOPClassUID": MR_IMAGE_STORAGE,
                    "SOPInstanceUID": instance_uid,
                    "InstanceCreationDate": date,
                    "InstanceCreationTime": time,
                    # patient
                    "PatientName": patient_name,
                    "PatientID": patient_id,
                    "PatientBirthDate": "",
                    "PatientSex": "",
                    # study
                    "StudyInstanceUID": study_uid,
                    "StudyDate": date,
                    "StudyTime": time,
                    "ReferringPhysicianName": "",
                    "StudyID": "",
                    "AccessionNumber": "",
                    # series
                    "Modality": "MR",
                    "SeriesInstanceUID": series_uid,
                    "SeriesNumber": int(series_number),
                    "SeriesDate": date,
                    "SeriesTime": time,
                    "SeriesDescription": series_description,
                    "PatientPosition": "",
                    # frame of reference, equipment
                    "FrameOfReferenceUID": frame_uid,
                    "PositionReferenceIndicator": "",
                    "Manufacturer": "deepinv-lab",
                    # general image
                    "InstanceNumber": index + 1,
                    "ContentDate": date,
                    "ContentTime": time,
                    "ImageType": ["DERIVED", "PRIMARY", "OTHER"],
                    # image plane
                    "PixelSpacing": _ds_list(geometry.pixel_spacing),
                    "ImageOrientationPatient": orientation,
                    "ImagePositionPatient": _ds_list(geometry.corner(index, (height, width))),
                    "SliceThickness": _ds(geometry.slice_thickness),
                    "SliceLocation": _ds(float(np.dot(geometry.positions[index], normal))),
                    # MR image
                    "ScanningSequence": "RM",  # research mode: not known here
                    "SequenceVariant": "NONE",
                    "ScanOptions": "",
                    "MRAcquisitionType": acquisition_type,
                    "RepetitionTime": None,
                    "EchoTime": None,
                    "EchoTrainLength": None,
                    # image pixel, rescale and window
                    "SamplesPerPixel": 1,
                    "PhotometricInterpretation": "MONOCHROME2",
                    "Rows": height,
                    "Columns": width,
                    "BitsAllocated": 16,
                    "BitsStored": 16,
                    "HighBit": 15,
                    "PixelRepresentation": 0,
                    "RescaleIntercept": _ds(intercept),
                    "RescaleSlope": _ds(slope),
                    "WindowCenter": _ds((low + high) / 2),
                    "WindowWidth": _ds(max(high - low, slope)),
                    "VOILUTFunction": "LINEAR_EXACT",
                },
            )
            if num_slices > 1:
                dataset.SpacingBetweenSlices = _ds(float(np.linalg.norm(geometry.slice_step())))
            dataset.add_new(0x7FE00010, "OW", stored[index].astype("<u2").tobytes())
            name = f"IM_{index + 1:0{digits}d}.dcm"
            dataset.save_as(temporary / name, enforce_file_format=True)
            paths.append(folder / name)
    return paths


def _mr_dataset(meta: Any, values: dict[str, Any]) -> Any:
    """A dataset with file meta ``meta`` and the attributes ``values`` (keyword -> value; None
    for an empty type 2 attribute)."""
    from pydicom.dataset import Dataset

    dataset = Dataset()
    dataset.file_meta = meta
    for keyword, value in values.items():
        setattr(dataset, keyword, value)
    return dataset


# --------------------------------------------------------------------------------------------
# PNG and TIFF
# --------------------------------------------------------------------------------------------


def _image_batch(volume: Any) -> tuple[np.ndarray, bool]:
    """``(H, W)``, ``(S, H, W)`` or ``(N, C, H, W)`` as ``(N, H, W)`` grey or ``(N, H, W, 3)``
    RGB float64, and whether the input was a 4-D batch of images."""
    array = _as_array(volume)
    if array.ndim == 4:
        if array.shape[1] not in (1, 3):
            raise ValueError(f"images (N, C, H, W) need C = 1 or 3, got shape {array.shape}")
        array = array[:, 0] if array.shape[1] == 1 else array.transpose(0, 2, 3, 1)
        batch = True
    else:
        array, batch = _as_stack(array), False
    if 0 in array.shape:
        raise ValueError(f"cannot write empty images, shape {array.shape}")
    return array, batch


def image_scale(volume: Any, scale: str = "auto") -> str:
    """The PNG scaling :func:`write_images` uses for ``volume``: ``"unit"`` or ``"max"``.

    ``"auto"`` is ``"unit"`` for batches of images ``(N, C, H, W)`` (the image systems' outputs)
    and ``"max"`` for slices ``(S, H, W)`` and ``(H, W)`` (MRI magnitudes, whose values may be
    tiny, e.g. ~1e-4 in fastMRI, and would be black in 8 bits).
    """
    if scale not in IMAGE_SCALES:
        raise ValueError(f"scale must be one of {IMAGE_SCALES}, got {scale!r}")
    if scale != "auto":
        return scale
    return "unit" if _as_array(volume).ndim == 4 else "max"


def _png_pixels(images: np.ndarray, scale: str) -> np.ndarray:
    """Float images -> ``uint8`` (``"unit"``: ``[0, 1]`` clipped, times 255) or ``uint16``
    (``"max"``: negatives clipped to 0, the maximum to 65535)."""
    if scale == "unit":
        return np.rint(np.clip(images, 0.0, 1.0) * 255).astype(np.uint8)
    if images.ndim == 4:
        raise ValueError('16-bit PNG (scale="max") is for grey images, not RGB: use scale="unit"')
    peak = float(images.max())
    if peak <= 0:
        return np.zeros(images.shape, dtype=np.uint16)
    return np.rint(np.clip(images, 0.0, None) / peak * 65535).astype(np.uint16)


def write_images(
    volume: Any,
    target: str | os.PathLike,
    format: str = "png",
    *,
    scale: str = "auto",
    overwrite: bool = False,
) -> list[Path]:
    """Write slices or images as PNG files or as one TIFF file.

    Args:
        volume: slices ``(S, H, W)``, one image ``(H, W)``, or images ``(N, C, H, W)`` with
            ``C`` 1 (grey) or 3 (RGB; written channels last, as image files hold them).
        target: PNG: a ``.png`` file for a single image, else a folder that gets ``0001.png``,
            ``0002.png``, ... in order; TIFF: a ``.tif``/``.tiff`` file.
        format: ``"png"`` or ``"tiff"``.
        scale: PNG only (:func:`image_scale`): ``"unit"`` 8-bit, values in ``[0, 1]`` (clipped)
            times 255, grey or RGB; ``"max"`` 16-bit grey, ``round(v / max * 65535)`` with the
            maximum over all images (one brightness for the stack) and negatives clipped to 0;
            ``"auto"`` ``"unit"`` for ``(N, C, H, W)`` images, ``"max"`` for slices. TIFF holds
            the float32 values exactly: a page per slice or image (RGB pages for ``C = 3``).
        overwrite: replace an existing file, or a folder holding only earlier ``NNNN.png``.

    Returns:
        The files written.

    Raises:
        UserError: the target exists and not ``overwrite``.
        ValueError: a wrong shape, format, scale or target suffix.
    """
    target = Path(target)
    images, _ = _image_batch(volume)
    if format == "tiff":
        if not target.name.lower().endswith(_TIFF_SUFFIXES):
            raise ValueError(f"{str(target)!r}: a TIFF file name ends with .tif or .tiff")
        return [_write_tiff(images, target, overwrite)]
    if format != "png":
        raise ValueError(f'format must be "png" or "tiff", got {format!r}')
    pixels = _png_pixels(images, image_scale(volume, scale))
    if target.suffix.lower() == ".png":
        if len(pixels) != 1:
            raise ValueError(
                f"{str(target)!r} is one PNG file but there are {len(pixels)} images; give a folder"
            )
        _check_file_target(target, overwrite)
        _save_png(pixels[0], target)
        return [target]
    _check_folder_target(target, overwrite, _PNG_FILE)
    digits = max(4, len(str(len(pixels))))
    names = [f"{index + 1:0{digits}d}.png" for index in range(len(pixels))]
    with _atomic_folder(target) as temporary:
        for name, image in zip(names, pixels, strict=True):
            _save_png(image, temporary / name, atomic=False)
    return [target / name for name in names]


def _save_png(pixels: np.ndarray, path: Path, atomic: bool = True) -> None:
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(pixels))
    if not atomic:
        image.save(path, format="PNG")
        return
    with _atomic_file(path) as temporary:
        image.save(temporary, format="PNG")


def _write_tiff(images: np.ndarray, path: Path, overwrite: bool) -> Path:
    import tifffile

    _check_file_target(path, overwrite)
    data = np.asarray(images[0] if len(images) == 1 else images, dtype=np.float32)
    photometric = "rgb" if images.ndim == 4 else "minisblack"
    with _atomic_file(path) as temporary:
        tifffile.imwrite(temporary, data, photometric=photometric)
    return path


# --------------------------------------------------------------------------------------------
# fastMRI HDF5
# --------------------------------------------------------------------------------------------


def write_fastmri_reconstruction(
    volume: Any, path: str | os.PathLike, *, overwrite: bool = False
) -> Path:
    """Write slices ``(S, h, w)`` (or one ``(h, w)``, as ``(1, h, w)``) in fastMRI's submission
    format: an HDF5 file with the float32 dataset ``reconstruction`` ``(S, h, w)``, as fastMRI's
    ``save_reconstructions`` (the file named as the input volume, e.g. ``file1000000.h5``).

    Raises:
        UserError: ``path`` exists and not ``overwrite``.
        ValueError: a wrong shape.
    """
    import h5py

    path = Path(path)
    data = _as_stack(volume).astype(np.float32)
    _check_file_target(path, overwrite)
    with _atomic_file(path) as temporary:
        with h5py.File(temporary, "w") as file:
            file.create_dataset("reconstruction", data=data)
    return path


# --------------------------------------------------------------------------------------------
# Dispatch
# --------------------------------------------------------------------------------------------


def _with_suffix(stem: Path, suffixes: Sequence[str]) -> Path:
    """``stem`` with ``suffixes[0]`` appended, unless it already ends with one of them."""
    if stem.name.lower().endswith(tuple(suffixes)):
        return stem
    return stem.with_name(stem.name + suffixes[0])


def output_path(volume_shape: Sequence[int], stem: str | os.PathLike, format: str) -> Path:
    """Where :func:`write_reconstruction` writes a volume of shape ``volume_shape`` in
    ``format``: ``<stem>.nii.gz``, folder ``<stem>/`` (DICOM, and PNG for several images),
    ``<stem>.png`` (one image), ``<stem>.tiff`` or ``<stem>.h5``; a stem that already ends with
    the format's extension (``.nii``, ``.tif``, ...) keeps it.

    Raises:
        UserError: an unknown format.
    """
    stem = Path(stem)
    if format == "nifti":
        return _with_suffix(stem, _NIFTI_SUFFIXES)
    if format == "tiff":
        return _with_suffix(stem, _TIFF_SUFFIXES)
    if format == "h5":
        return _with_suffix(stem, (".h5",))
    if format == "dicom":
        return stem
    if format == "png":
        shape = tuple(volume_shape)
        single = len(shape) == 2 or (len(shape) in (3, 4) and shape[0] == 1)
        if single:
            return _with_suffix(stem, (".png",))
        return stem.with_suffix("") if stem.suffix.lower() == ".png" else stem
    raise UserError(f"unknown output format {format!r}; choose one of {', '.join(FORMATS)}")


def write_reconstruction(
    volume: Any,
    path: str | os.PathLike,
    format: str,
    geometry: SliceGeometry | None = None,
    overwrite: bool = False,
    **metadata: Any,
) -> list[Path]:
    """Write a reconstruction in ``format`` (one of :data:`FORMATS`) at the name
    :func:`output_path` makes of the stem ``path``.

    ``"nifti"``: :func:`write_nifti` (``geometry``; options ``affine``, ``layout``);
    ``"dicom"``: :func:`write_dicom_series` (``geometry``; options ``series_description``,
    ``patient_name``, ``patient_id``, ``study_uid``, ``series_uid``, ``series_number``);
    ``"png"``, ``"tiff"``: :func:`write_images` (option ``scale`` for PNG);
    ``"h5"``: :func:`write_fastmri_reconstruction`. ``geometry`` is ignored by the image and
    HDF5 formats, and so are the options of formats other than ``format`` (one set of options
    may serve every format).

    Returns:
        The files written.

    Raises:
        UserError: an unknown format, or an existing output and not ``overwrite``.
        TypeError: an option that no format takes.
    """
    known = {name for names in _OPTIONS.values() for name in names}
    unknown = sorted(set(metadata) - known)
    if unknown:
        raise TypeError(f"unknown writer options {unknown}; known: {sorted(known)}")
    array = _as_array(volume)
    target = output_path(array.shape, path, format)
    options = {key: value for key, value in metadata.items() if key in _OPTIONS[format]}
    if format == "nifti":
        return [write_nifti(array, target, geometry, overwrite=overwrite, **options)]
    if format == "dicom":
        return write_dicom_series(array, target, geometry, overwrite=overwrite, **options)
    if format in ("png", "tiff"):
        return write_images(array, target, format, overwrite=overwrite, **options)
    return [write_fastmri_reconstruction(array, target, overwrite=overwrite)]
