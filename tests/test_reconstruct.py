"""``deepinv-lab reconstruct``: a checkpoint on ISMRMRD, fastMRI and image files, written as
NIfTI/DICOM/HDF5/PNG, and its refusals."""

from __future__ import annotations

from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pytest
import torch
from ismrmrd_files import brain_coil_images, write_ismrmrd
from test_export import SMALL_DNCNN, SMALL_VARNET, small_denoiser, small_varnet, write_checkpoint

from deepinv_lab.cli import main
from deepinv_lab.functional import rss
from deepinv_lab.inference.raw import reconstruct_raw
from deepinv_lab.io.ismrmrd import read_ismrmrd


def varnet_checkpoint(tmp_path: Path) -> Path:
    config = {"class_path": "deepinv_lab.recons.VarNet", "init_args": SMALL_VARNET}
    data = {"class_path": "deepinv_lab.data.fastmri_datamodule.FastMRIDataModule"}
    return write_checkpoint(tmp_path / "varnet.ckpt", small_varnet(), config, data)


def dncnn_checkpoint(tmp_path: Path) -> Path:
    config = {
        "class_path": "deepinv_lab.recons.Denoiser",
        "init_args": {
            "model": {"class_path": "deepinv_lab.models.DnCNN", "init_args": SMALL_DNCNN}
        },
    }
    data = {"class_path": "deepinv_lab.data.presets.BuiltinDenoisingDataModule"}
    return write_checkpoint(tmp_path / "dncnn.ckpt", small_denoiser(), config, data)


@pytest.fixture(scope="module")
def raw_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    folder = tmp_path_factory.mktemp("raw")
    images = brain_coil_images(3, 4, (32, 24))
    write_ismrmrd(folder / "scan.h5", images)
    return folder, images


def test_fully_sampled_zero_filled_equals_rss_of_the_coil_images(raw_folder) -> None:
    folder, images = raw_folder
    (volume,) = read_ismrmrd(folder / "scan.h5")
    from deepinv_lab.recons import ZeroFilled

    out = reconstruct_raw(ZeroFilled(), volume, torch.device("cpu"), batch_size=2)
    expected = rss(torch.from_numpy(images), dim=1).numpy()
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, atol=1e-5 * expected.max())


def test_reconstruct_ismrmrd_to_nifti_dicom_h5(raw_folder, tmp_path: Path) -> None:
    folder, _ = raw_folder
    ckpt = varnet_checkpoint(tmp_path)
    out = tmp_path / "out"
    args = ["reconstruct", "--ckpt_path", str(ckpt), "--input", str(folder), "--output", str(out)]
    assert main([*args, "--format", "nifti,dicom,h5", "--batch_size", "2"]) == 0
    (volume,) = read_ismrmrd(folder / "scan.h5")
    image = nib.load(out / "scan.nii.gz")
    assert image.shape == (32, 24, 3)
    np.testing.assert_allclose(image.affine, volume.geometry.affine((32, 24)))
    with h5py.File(out / "scan.h5", "r") as file:
        np.testing.assert_allclose(
            file["reconstruction"][()], np.moveaxis(image.get_fdata(), -1, 0), rtol=1e-5
        )
    assert len(list((out / "scan").glob("*.dcm"))) == 3
    assert main([*args]) == 2  # the NIfTI exists: refused without --overwrite
    assert main([*args, "--overwrite"]) == 0


def test_reconstruct_refusals(raw_folder, tmp_path: Path, capsys) -> None:
    folder, _ = raw_folder
    dncnn = dncnn_checkpoint(tmp_path)
    base = ["reconstruct", "--ckpt_path", str(dncnn), "--input", str(folder)]
    assert main([*base, "--output", str(tmp_path / "o")]) == 2
    assert "Denoiser reconstructs images" in capsys.readouterr().err
    assert main([*base, "--output", str(folder)]) == 2
    assert "input folder" in capsys.readouterr().err


def test_reconstruct_images_with_a_denoiser(tmp_path: Path) -> None:
    from PIL import Image

    inputs = tmp_path / "in"
    inputs.mkdir()
    pixels = (np.random.default_rng(0).random((20, 16)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(inputs / "photo.png")
    out = tmp_path / "out"
    ckpt = dncnn_checkpoint(tmp_path)
    assert (
        main(
            ["reconstruct", "--ckpt_path", str(ckpt), "--input", str(inputs), "--output", str(out)]
        )
        == 0
    )
    result = np.asarray(Image.open(out / "photo.png"))
    assert result.shape == (20, 16)
    with torch.no_grad():
        expected = small_denoiser()(torch.from_numpy(pixels / 255.0).float()[None, None])[0, 0]
    expected = np.clip(np.round(expected.numpy() * 255), 0, 255)
    assert np.abs(result.astype(float) - expected).max() <= 1
