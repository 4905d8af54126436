"""Writing reconstructions (:mod:`deepinv_lab.io.writers`): NIfTI, DICOM, PNG, TIFF, fastMRI HDF5,
and the cross-check that a NIfTI voxel and the DICOM pixel of the same index lie at the same
scanner position."""

import h5py
import nibabel as nib
import numpy as np
import pydicom
import pytest
import tifffile
from PIL import Image

from deepinv_lab.errors import UserError
from deepinv_lab.io.geometry import LPS_TO_RAS, SliceGeometry
from deepinv_lab.io.writers import (
    FORMATS,
    MR_IMAGE_STORAGE,
    dicom_rescale,
    write_dicom_series,
    write_fastmri_reconstruction,
    write_images,
    write_nifti,
    write_reconstruction,
)

S, H, W = 3, 6, 5


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def oblique_geometry(num_slices: int = S) -> SliceGeometry:
    """A double-oblique stack: read/phase/slice rotated away from the scanner axes, anisotropic
    pixels, slices 4 mm apart along the normal."""
    rotation = _rotation(np.array([1.0, 2.0, 0.5]), 0.4)
    read, phase = rotation @ [1.0, 0, 0], rotation @ [0, 1.0, 0]
    normal = np.cross(read, phase)
    centre = np.array([10.0, -20.0, 35.0])
    positions = centre + np.outer(np.arange(num_slices) * 4.0, normal)
    return SliceGeometry(positions, read, phase, normal, (0.7, 1.3), 3.0)


@pytest.fixture
def volume() -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 2e-4, (S, H, W)).astype(np.float32)


@pytest.fixture
def strict_pydicom(monkeypatch):
    """pydicom raises on any invalid value it writes or reads."""
    monkeypatch.setattr(pydicom.config.settings, "writing_validation_mode", pydicom.config.RAISE)
    monkeypatch.setattr(pydicom.config.settings, "reading_validation_mode", pydicom.config.RAISE)


# ---- NIfTI ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["r.nii", "r.nii.gz"])
def test_nifti_geometry(tmp_path, volume, name):
    geometry = oblique_geometry()
    path = write_nifti(volume, tmp_path / name, geometry)
    image = nib.load(path)
    assert image.get_data_dtype() == np.float32
    assert image.shape == (H, W, S)
    np.testing.assert_array_equal(image.get_fdata(dtype=np.float32), volume.transpose(1, 2, 0))
    np.testing.assert_allclose(image.affine, geometry.affine((H, W)), atol=1e-4)
    assert int(image.header["sform_code"]) == 1 and int(image.header["qform_code"]) == 1
    np.testing.assert_allclose(image.get_qform(), geometry.affine((H, W)), atol=1e-4)
    # voxel (h, w, s) lies at the slice centre + offsets along read and phase (RAS)
    h, w, s = 4, 1, 2
    expected = (
        geometry.positions[s]
        + geometry.read_dir * 0.7 * (h - H // 2)
        + geometry.phase_dir * 1.3 * (w - W // 2)
    ) * [-1, -1, 1]
    np.testing.assert_allclose(
        nib.affines.apply_affine(image.affine, [h, w, s]), expected, atol=1e-4
    )
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_nifti_without_geometry_and_shapes(tmp_path, volume):
    image = nib.load(write_nifti(volume, tmp_path / "a.nii.gz"))
    assert int(image.header["sform_code"]) == 0 and int(image.header["qform_code"]) == 0
    np.testing.assert_array_equal(image.header.get_sform(), np.eye(4))
    np.testing.assert_allclose(image.header.get_zooms(), (1, 1, 1))
    # one 2D image: (H, W, 1), with the geometry of one slice
    image = nib.load(write_nifti(volume[1], tmp_path / "b.nii", oblique_geometry().select([1])))
    assert image.shape == (H, W, 1)
    np.testing.assert_allclose(
        image.affine[:3, 3],
        oblique_geometry().affine((H, W))[:3, 3]
        + LPS_TO_RAS[:3, :3] @ oblique_geometry().slice_step(),
        atol=1e-4,
    )
    # a 3D volume (D, H, W): axes as given (as deepinv_lab.data.volumes reads them back)
    affine = np.diag([2.0, 3.0, 4.0, 1.0])
    image = nib.load(write_nifti(volume, tmp_path / "c.nii.gz", affine=affine, layout="volume"))
    np.testing.assert_array_equal(image.get_fdata(dtype=np.float32), volume)
    np.testing.assert_allclose(image.affine, affine)
    with pytest.raises(ValueError, match="3 slice positions for 2 slices"):
        write_nifti(volume[:2], tmp_path / "d.nii", oblique_geometry())


# ---- DICOM ----------------------------------------------------------------------------------


def test_dicom_series(tmp_path, volume, strict_pydicom):
    geometry = oblique_geometry()
    paths = write_dicom_series(volume, tmp_path / "series", geometry, patient_name="Doe^J")
    assert [p.name for p in paths] == ["IM_0001.dcm", "IM_0002.dcm", "IM_0003.dcm"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["series"]
    datasets = [pydicom.dcmread(p) for p in paths]
    uids = set()
    for index, ds in enumerate(datasets):
        pydicom.dataset.validate_file_meta(ds.file_meta, enforce_standard=True)
        assert ds.preamble is not None
        assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
        assert ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID == MR_IMAGE_STORAGE
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        uids.add(ds.SOPInstanceUID)
        assert ds.Modality == "MR" and ds.Manufacturer == "deepinv-lab"
        assert ds.InstanceNumber == index + 1 and str(ds.PatientName) == "Doe^J"
        for keyword in (
            "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
            "ReferringPhysicianName", "StudyID", "AccessionNumber", "SeriesNumber",
            "ScanningSequence", "SequenceVariant", "ScanOptions", "MRAcquisitionType",
            "ImageType", "FrameOfReferenceUID", "SliceThickness", "WindowCenter", "WindowWidth",
        ):  # fmt: skip
            assert keyword in ds, keyword
        assert (ds.Rows, ds.Columns) == (H, W)
        assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation) == (
            16, 16, 15, 0,
        )  # fmt: skip
        assert ds.pixel_array.dtype == np.uint16
        values = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        np.testing.assert_allclose(values, volume[index], atol=float(ds.RescaleSlope) / 2 * 1.01)
        assert [float(v) for v in ds.PixelSpacing] == pytest.approx(geometry.pixel_spacing)
        np.testing.assert_allclose(
            ds.ImagePositionPatient, geometry.corner(index, (H, W)), atol=1e-6
        )
        assert float(ds.SliceThickness) == 3.0
        assert float(ds.SpacingBetweenSlices) == pytest.approx(4.0)
    assert len(uids) == S
    assert len({(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID)
                for ds in datasets}) == 1  # fmt: skip
    # SliceLocation: the position along the normal of IOP (row direction x column direction)
    iop = np.array(datasets[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    for ds in datasets:
        position = np.array(ds.ImagePositionPatient, dtype=float)
        assert float(ds.SliceLocation) == pytest.approx(position @ normal, abs=1e-6)
    locations = [float(ds.SliceLocation) for ds in datasets]
    np.testing.assert_allclose(np.abs(np.diff(locations)), 4.0, atol=1e-6)


def test_dicom_and_nifti_agree_on_positions(tmp_path, volume):
    """The key cross-check: pixel (r, c) of DICOM slice s and NIfTI voxel (r, c, s) lie at the
    same LPS position. DICOM (PS3.3 C.7.6.2.1.1): P = IPP + X * dc * c + Y * dr * r, X the first
    IOP triple (along a row: increasing column index), Y the second (increasing row index),
    dr = PixelSpacing[0] (between rows), dc = PixelSpacing[1] (between columns)."""
    geometry = oblique_geometry()
    nifti = nib.load(write_nifti(volume, tmp_path / "v.nii.gz", geometry))
    paths = write_dicom_series(volume, tmp_path / "dcm", geometry)
    lps_affine = LPS_TO_RAS @ nifti.affine
    for s, path in enumerate(paths):
        ds = pydicom.dcmread(path)
        iop = np.array(ds.ImageOrientationPatient, dtype=float)
        x, y = iop[:3], iop[3:]
        dr, dc = (float(v) for v in ds.PixelSpacing)
        ipp = np.array(ds.ImagePositionPatient, dtype=float)
        for r, c in [(0, 0), (H - 1, 0), (0, W - 1), (4, 3)]:
            dicom = ipp + x * dc * c + y * dr * r
            np.testing.assert_allclose(dicom, (lps_affine @ [r, c, s, 1])[:3], atol=1e-3)
            # same pixel, same value
            value = ds.pixel_array[r, c] * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
            assert value == pytest.approx(nifti.dataobj[r, c, s], abs=float(ds.RescaleSlope))
        # IOP's directions are the NIfTI affine's columns for W and H, normalised
        np.testing.assert_allclose(x, lps_affine[:3, 1] / dc, atol=1e-6)
        np.testing.assert_allclose(y, lps_affine[:3, 0] / dr, atol=1e-6)


def test_dicom_without_geometry_signed_values(tmp_path, strict_pydicom):
    volume = np.linspace(-3.0, 5.0, 2 * 4 * 4).reshape(2, 4, 4)
    paths = write_dicom_series(volume, tmp_path / "s", series_description="x")
    for s, path in enumerate(paths):
        ds = pydicom.dcmread(path)
        assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
        assert [float(v) for v in ds.ImagePositionPatient] == [0, 0, s]
        assert [float(v) for v in ds.PixelSpacing] == [1, 1]
        slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
        assert intercept == -3.0
        np.testing.assert_allclose(ds.pixel_array * slope + intercept, volume[s], atol=slope)
        assert ds.pixel_array.min() == 0 if s == 0 else ds.pixel_array.max() == 65535


def test_dicom_rescale_keeps_zero():
    stored, slope, intercept = dicom_rescale(np.array([[0.0, 1e-4, 3e-4]]))
    assert intercept == 0 and stored[0, 0] == 0 and stored[0, 2] == 65535
    assert dicom_rescale(np.zeros((2, 2)))[1:] == (1.0, 0.0)


# ---- PNG, TIFF, HDF5 ------------------------------------------------------------------------


def test_png_16_bit_slices(tmp_path, volume):
    paths = write_images(volume, tmp_path / "png")
    assert [p.name for p in paths] == ["0001.png", "0002.png", "0003.png"]
    peak = volume.max()
    for path, image in zip(paths, volume, strict=True):
        pixels = np.asarray(Image.open(path))
        assert pixels.dtype in (np.uint16, np.int32) and pixels.shape == (H, W)
        np.testing.assert_allclose(pixels / 65535 * peak, image, atol=peak / 65535)
    assert int(np.asarray(Image.open(paths[int(np.argmax(volume.max((1, 2))))])).max()) == 65535


def test_png_8_bit_images(tmp_path):
    rng = np.random.default_rng(1)
    rgb = rng.uniform(0, 1, (1, 3, H, W))
    (path,) = write_images(rgb, tmp_path / "rgb.png")
    pixels = np.asarray(Image.open(path))
    assert pixels.dtype == np.uint8 and pixels.shape == (H, W, 3)
    np.testing.assert_allclose(pixels / 255, rgb[0].transpose(1, 2, 0), atol=0.5 / 255 + 1e-9)
    grey = rng.uniform(-0.1, 1.1, (2, 1, H, W))  # outside [0, 1]: clipped, as images
    paths = write_images(grey, tmp_path / "grey")
    pixels = np.asarray(Image.open(paths[1]))
    assert Image.open(paths[1]).mode == "L"
    np.testing.assert_allclose(pixels / 255, np.clip(grey[1, 0], 0, 1), atol=0.5 / 255 + 1e-9)
    # explicit 8-bit for slices in [0, 1]
    (path,) = write_images(grey[0, 0].clip(0, 1), tmp_path / "one.png", scale="unit")
    assert np.asarray(Image.open(path)).dtype == np.uint8


def test_tiff_exact(tmp_path, volume):
    (path,) = write_images(volume, tmp_path / "v.tiff", "tiff")
    with tifffile.TiffFile(path) as tiff:
        assert len(tiff.pages) == S
    read = tifffile.imread(path)
    assert read.dtype == np.float32
    np.testing.assert_array_equal(read, volume)
    (path,) = write_images(volume[0], tmp_path / "one.tif", "tiff")
    np.testing.assert_array_equal(tifffile.imread(path), volume[0])


def test_fastmri_h5(tmp_path, volume):
    path = write_fastmri_reconstruction(volume.astype(np.float64), tmp_path / "file1.h5")
    with h5py.File(path, "r") as file:
        assert list(file) == ["reconstruction"]
        data = file["reconstruction"]
        assert data.dtype == np.float32 and data.shape == (S, H, W)
        np.testing.assert_array_equal(data[()], volume)


# ---- dispatch -------------------------------------------------------------------------------


def test_write_reconstruction_every_format(tmp_path, volume):
    geometry = oblique_geometry()
    names = {
        "nifti": ["r.nii.gz"],
        "dicom": ["r/IM_0001.dcm", "r/IM_0002.dcm", "r/IM_0003.dcm"],
        "png": ["r/0001.png", "r/0002.png", "r/0003.png"],
        "tiff": ["r.tiff"],
        "h5": ["r.h5"],
    }
    assert set(FORMATS) == set(names)
    for format in FORMATS:
        folder = tmp_path / format
        paths = write_reconstruction(
            volume, folder / "r", format, geometry, patient_id="P1", scale="max"
        )
        assert [p.relative_to(folder).as_posix() for p in paths] == names[format]
        # nothing else, in particular no temporary file or folder
        everything = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))
        assert everything == sorted(set(names[format]) | {"r"} if format in ("dicom", "png")
                                    else names[format])  # fmt: skip
    assert pydicom.dcmread(tmp_path / "dicom/r/IM_0001.dcm").PatientID == "P1"
    with pytest.raises(TypeError, match="patient_nmae"):
        write_reconstruction(volume, tmp_path / "x", "h5", patient_nmae="typo")
    with pytest.raises(UserError, match="unknown output format 'jpeg'"):
        write_reconstruction(volume, tmp_path / "x", "jpeg")


@pytest.mark.parametrize("format", FORMATS)
def test_overwrite_refused_then_allowed(tmp_path, volume, format):
    (first, *_) = write_reconstruction(volume, tmp_path / "r", format)
    target = first if format in ("nifti", "tiff", "h5") else first.parent
    with pytest.raises(UserError) as error:
        write_reconstruction(volume * 2, tmp_path / "r", format)
    message = str(error.value)
    assert "\n" not in message and repr(str(target)) in message and "already exists" in message
    paths = write_reconstruction(volume[:2] * 2, tmp_path / "r", format, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]  # no leftovers
    if format in ("dicom", "png"):
        assert sorted(target.iterdir()) == sorted(paths)  # the old third slice is gone


def test_overwrite_spares_foreign_folders(tmp_path, volume):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep")
    with pytest.raises(UserError, match="notes.txt"):
        write_reconstruction(volume, folder, "dicom", overwrite=True)
    assert (folder / "notes.txt").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_failed_write_leaves_nothing(tmp_path, volume, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pydicom.dataset.Dataset, "save_as", broken)
    with pytest.raises(OSError, match="disk full"):
        write_dicom_series(volume, tmp_path / "s")
    monkeypatch.setattr(h5py.File, "create_dataset", broken, raising=False)
    monkeypatch.setattr(h5py.Group, "create_dataset", broken)
    with pytest.raises(OSError, match="disk full"):
        write_fastmri_reconstruction(volume, tmp_path / "f.h5")
    assert list(tmp_path.iterdir()) == []
