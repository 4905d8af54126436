"""ISMRMRD raw data -> RawVolume -> fastMRI-layout files (deepinv_lab.io), and ``convert``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import h5py
import ismrmrd
import numpy as np
import pytest

from deepinv_lab.data.fastmri import FastMRISliceDataset
from deepinv_lab.data.fastmri.volumes import read_volume_info
from deepinv_lab.errors import UserError
from deepinv_lab.io.convert import convert_command
from deepinv_lab.io.fastmri_raw import read_fastmri_raw, write_fastmri_raw
from deepinv_lab.io.ismrmrd import central_run_width, read_ismrmrd
from tests.ismrmrd_files import brain_coil_images, write_ismrmrd

# 40 of 48 columns: a central block of 12 (columns 18..29) and every 4th column elsewhere
UNDERSAMPLED = sorted(set(range(18, 30)) | set(range(0, 48, 4)))


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return brain_coil_images(3, 4, (64, 48))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _only(volumes: list) -> object:
    assert len(volumes) == 1
    return volumes[0]


def test_fully_sampled_rss_target(tmp_path, images):
    source = tmp_path / "scan.h5"
    kspace = write_ismrmrd(source, images, noise_scans=2)
    before = _digest(source)
    volume = _only(read_ismrmrd(source))
    assert _digest(source) == before  # read-only
    assert volume.name == "scan" and volume.acquisition == "AXT2"
    assert volume.kspace.shape == (3, 4, 128, 48) and volume.kspace.dtype == np.complex64
    assert volume.recon_size == (64, 48) and volume.fully_sampled
    assert volume.num_low_frequencies == 48
    np.testing.assert_allclose(volume.kspace, kspace[0], atol=1e-6 * np.abs(kspace).max())

    out = tmp_path / "out" / "scan.h5"
    write_fastmri_raw(volume, out)
    expected = np.sqrt((np.abs(images) ** 2).sum(1))
    with h5py.File(out, "r") as f:
        target = f["reconstruction_rss"][()]
        assert target.dtype == np.float32 and "mask" not in f
        assert float(f.attrs["max"]) == pytest.approx(float(target.max()))
        assert f.attrs["acquisition"] == "AXT2" and "deepinv_lab_geometry" in f.attrs
    np.testing.assert_allclose(target, expected, rtol=0, atol=1e-5 * expected.max())
    back = read_fastmri_raw(out)
    np.testing.assert_array_equal(back.kspace, volume.kspace)
    assert back.recon_size == (64, 48) and back.fully_sampled and back.header == volume.header
    assert back.geometry.to_json() == volume.geometry.to_json()
    np.testing.assert_array_equal(back.target, target)


def test_undersampled_mask_and_kspace(tmp_path, images):
    source = tmp_path / "under.h5"
    kspace = write_ismrmrd(source, images, columns=UNDERSAMPLED)[0]
    volume = _only(read_ismrmrd(source))
    expected_mask = np.zeros(48, np.float32)
    expected_mask[UNDERSAMPLED] = 1
    np.testing.assert_array_equal(volume.mask, expected_mask)
    assert volume.num_low_frequencies == 12  # the run 18..29 around column 24
    assert volume.acceleration == pytest.approx(48 / len(UNDERSAMPLED))
    off = expected_mask == 0
    assert np.all(volume.kspace[..., off] == 0)
    np.testing.assert_allclose(volume.kspace[..., ~off], kspace[..., ~off], atol=1e-7)

    out = tmp_path / "out" / "under.h5"
    write_fastmri_raw(volume, out)
    with h5py.File(out, "r") as f:
        assert "reconstruction_rss" not in f
        np.testing.assert_array_equal(f["mask"][()], expected_mask > 0)
        assert int(f.attrs["num_low_frequency"]) == 12
        assert float(f.attrs["acceleration"]) == pytest.approx(volume.acceleration)
    back = read_fastmri_raw(out)
    np.testing.assert_array_equal(back.mask, expected_mask)
    assert back.num_low_frequencies == 12 and back.target is None


def test_padding_left_places_columns(tmp_path, images):
    source = tmp_path / "pf.h5"
    columns = list(range(8, 48))  # partial Fourier: the first 8 columns never acquired
    kspace = write_ismrmrd(source, images[:1], columns=columns, padding_left=8)[0]
    volume = _only(read_ismrmrd(source))
    assert volume.mask[:8].sum() == 0 and volume.mask[8:].all()
    np.testing.assert_allclose(volume.kspace[..., 8:], kspace[..., 8:], atol=1e-7)
    # the fastMRI reader finds the same acquired columns in the header
    write_fastmri_raw(volume, tmp_path / "out" / "pf.h5")
    info = read_volume_info(tmp_path / "out" / "pf.h5")
    assert (info.padding_left, info.padding_right) == (8, 48)


def test_averages_are_averaged(tmp_path, images):
    source = tmp_path / "avg.h5"
    kspace = write_ismrmrd(source, images[:2], averages=3)[0]  # scales 0.5, 1, 1.5
    volume = _only(read_ismrmrd(source))
    np.testing.assert_allclose(volume.kspace, kspace, atol=1e-6 * np.abs(kspace).max())


def test_repetitions_are_separate_volumes(tmp_path, images):
    source = tmp_path / "rep.h5"
    kspace = write_ismrmrd(source, images[:2], repetitions=2)
    volumes = read_ismrmrd(source)
    assert [v.name for v in volumes] == ["rep_rep0", "rep_rep1"]
    for volume, expected in zip(volumes, kspace, strict=True):
        np.testing.assert_allclose(volume.kspace, expected, atol=1e-6 * np.abs(kspace).max())


def test_reversed_lines_discards_and_asymmetric_echo(tmp_path, images):
    source = tmp_path / "echo.h5"
    kspace = write_ismrmrd(
        source, images[:2], reverse_every_other=True, readout_start=40, discard=(3, 2)
    )[0]
    volume = _only(read_ismrmrd(source))
    # the centre sample lands at H // 2 = 64; the 40 samples before the echo's start are zero
    assert np.all(volume.kspace[:, :, :40] == 0)
    np.testing.assert_allclose(volume.kspace[:, :, 40:], kspace[:, :, 40:], atol=1e-7)
    peak = np.unravel_index(np.abs(volume.kspace[0, 0]).argmax(), (128, 48))
    assert abs(peak[0] - 64) <= 2


def test_calibration_merge_and_drop(tmp_path, images):
    source = tmp_path / "acs.h5"
    columns = list(range(0, 48, 4))  # no centre
    acs = list(range(20, 28))  # 20, 24 also image lines; the others calibration only
    kspace = write_ismrmrd(source, images[:2], columns=columns, acs_lines=acs)[0]
    merged = _only(read_ismrmrd(source))
    assert np.flatnonzero(merged.mask).tolist() == sorted(set(columns) | set(acs))
    assert merged.num_low_frequencies == 9  # 20..27 and the image column 28
    np.testing.assert_allclose(merged.kspace[..., acs], kspace[..., acs], atol=1e-7)
    dropped = _only(read_ismrmrd(source, calibration="drop"))
    assert np.flatnonzero(dropped.mask).tolist() == columns
    assert dropped.num_low_frequencies == 1  # column 24 alone
    assert np.all(dropped.kspace[..., 21] == 0)
    with pytest.raises(UserError, match="calibration"):
        read_ismrmrd(source, calibration="keep")


def test_geometry_round_trip(tmp_path, images):
    source = tmp_path / "geo.h5"
    positions = np.array([[10.0, -20.0, 30.0 + 5 * s] for s in range(3)])
    read, phase, normal = (0.0, 1.0, 0.0), (1.0, 0.0, 0.0), (0.0, 0.0, -1.0)
    write_ismrmrd(source, images, positions=positions, orientation=(read, phase, normal))
    geometry = _only(read_ismrmrd(source)).geometry
    np.testing.assert_allclose(geometry.positions, positions)
    np.testing.assert_allclose(geometry.read_dir, read)
    assert geometry.pixel_spacing == (2.0, 2.0) and geometry.slice_thickness == 4.0
    affine = geometry.affine((64, 48), ras=False)
    # pixel (32, 24) of slice s (the centre of a 64 x 48 crop) is the slice position
    for s in range(3):
        np.testing.assert_allclose(affine @ [32, 24, s, 1], [*positions[s], 1], atol=1e-9)
    out = tmp_path / "out" / "geo.h5"
    write_fastmri_raw(_only(read_ismrmrd(source)), out)
    back = read_fastmri_raw(out).geometry
    np.testing.assert_allclose(back.affine((64, 48)), geometry.affine((64, 48)))


def test_central_run_width():
    assert central_run_width(np.array([1, 0, 1, 1, 1, 0])) == 3
    assert central_run_width(np.array([1, 1, 0, 1])) == 0
    assert central_run_width(np.ones(5)) == 5


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"trajectory": "radial"}, "non-Cartesian"),
        ({"trajectory_dimensions": 2}, "non-Cartesian"),
        ({"matrix_z": 2}, "3D"),
        ({"encodings": 2}, "multiple encodings"),
        ({"image_lines": False, "noise_scans": 2}, "no imaging acquisitions"),
        ({"image_lines": False}, "no acquisitions"),
        ({"slice_columns": {1: UNDERSAMPLED}}, "same columns"),
    ],
)
def test_refusals_name_the_file(tmp_path, images, options, match):
    source = tmp_path / "bad.h5"
    write_ismrmrd(
        source, images[:2, :2, :16, :12] if "slice_columns" not in options else images, **options
    )
    with pytest.raises(UserError, match=match) as error:
        read_ismrmrd(source)
    message = str(error.value)
    assert str(source) in message and "\n" not in message


def test_not_ismrmrd_and_missing(tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("kspace", data=np.zeros((1, 2, 2), np.complex64))
    with pytest.raises(UserError, match=r"not an ISMRMRD file.*\['kspace'\]") as error:
        read_ismrmrd(other)
    assert str(other) in str(error.value)
    text = tmp_path / "text.h5"
    text.write_text("hello")
    with pytest.raises(UserError, match="not an HDF5 file") as error:
        read_ismrmrd(text)
    assert str(text) in str(error.value)
    with pytest.raises(UserError, match="no such file"):
        read_ismrmrd(tmp_path / "missing.h5")


def test_header_is_valid_ismrmrd(tmp_path, images):
    source = tmp_path / "valid.h5"
    write_ismrmrd(source, images[:1, :2])
    header = ismrmrd.xsd.CreateFromDocument(_only(read_ismrmrd(source)).header)
    assert header.encoding[0].encodedSpace.matrixSize.x == 128


def test_convert_command(tmp_path, images, capsys):
    raw = tmp_path / "raw"
    raw.mkdir()
    write_ismrmrd(raw / "full.h5", images[:2])
    write_ismrmrd(raw / "under.h5", images[:2], columns=UNDERSAMPLED)
    digests = {p.name: _digest(p) for p in raw.iterdir()}
    with pytest.raises(UserError, match="inside"):
        convert_command(["--input", str(raw), "--output", str(raw / "out")])
    with pytest.raises(UserError, match="--overwritee|unrecognized"):
        convert_command(["--input", str(raw), "--output", str(tmp_path), "--overwritee"])

    out = tmp_path / "converted"
    assert convert_command(["--input", str(raw), "--output", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("full.h5") and "acceleration" in lines[1]
    assert sorted(p.name for p in out.iterdir()) == ["full.h5", "under.h5"]
    assert {p.name: _digest(p) for p in raw.iterdir()} == digests

    with pytest.raises(UserError, match="exists; give --overwrite") as error:
        convert_command(["--input", str(raw / "full.h5"), "--output", str(out)])
    assert str(out / "full.h5") in str(error.value)
    args = ["--input", str(raw / "full.h5"), "--output", str(out), "--overwrite"]
    assert convert_command([*args, "--calibration", "drop"]) == 0

    dataset = FastMRISliceDataset(out, split="test", use_dataset_cache=False)
    assert len(dataset) == 4
    item = dataset[3]  # under.h5, slice 1: its stored mask
    assert item["y"].shape == (4, 128, 48)
    assert item["mask"].reshape(-1).sum() == len(UNDERSAMPLED)
    assert tuple(item["crop_size"].tolist()) == (64, 48)
    full = FastMRISliceDataset([out / "full.h5"], split="val", use_dataset_cache=False)
    assert full[0]["target"].shape == (1, 64, 48)
