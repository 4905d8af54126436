"""3-D volume data: reading volume files, the cube symmetries, paired LR/HR volume folders and the
built-in brain volume source."""

from __future__ import annotations

import itertools

import nibabel
import numpy as np
import pytest
import tifffile
import torch

from deepinv_lab.data.augment3d import (
    NUM_CUBE_SYMMETRIES,
    apply_cube_symmetry,
    compose_cube_symmetries,
    cube_symmetry_matrix,
    invert_cube_symmetry,
)
from deepinv_lab.data.samplers import SeededIndex
from deepinv_lab.data.volume_datamodules import PairedVolumeFolder, PairedVolumeSRDataModule
from deepinv_lab.data.volumes import read_volume, volume_shape, volume_stem
from deepinv_lab.errors import UserError
from deepinv_lab.systems.downsampling import Downsampling

BATCH_KEYS = {"y", "target", "max_value", "volume_id", "slice_num", "fname", "system"}


def _box_down(volume: np.ndarray, scale: int) -> np.ndarray:
    d, h, w = (n // scale for n in volume.shape)
    return volume.reshape(d, scale, h, scale, w, scale).mean(axis=(1, 3, 5))


def _torch_box_down(volume: torch.Tensor, scale: int) -> torch.Tensor:
    return torch.nn.functional.avg_pool3d(volume[None], scale)[0]


# ---- reading ------------------------------------------------------------------------------


def test_read_npy_tiff_nifti(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.random((5, 6, 7)).astype(np.float32)
    np.save(tmp_path / "a.npy", data)
    tifffile.imwrite(tmp_path / "a.tif", (data * 255).astype(np.uint8))
    affine = np.diag([0.5, 0.5, 2.0, 1.0])
    nibabel.save(nibabel.Nifti1Image(data, affine), tmp_path / "a.nii.gz")

    npy = read_volume(tmp_path / "a.npy")
    assert npy.data.dtype == np.float32 and npy.affine is None
    np.testing.assert_array_equal(npy.data, data)
    tiff = read_volume(tmp_path / "a.tif")  # a multi-page stack, uint8 -> [0, 1]
    np.testing.assert_allclose(tiff.data, (data * 255).astype(np.uint8) / 255.0, atol=1e-7)
    nii = read_volume(tmp_path / "a.nii.gz")
    np.testing.assert_array_equal(nii.data, data)
    np.testing.assert_array_equal(nii.affine, affine)
    for name in ("a.npy", "a.tif", "a.nii.gz"):
        assert volume_shape(tmp_path / name) == (5, 6, 7)
    assert volume_stem("0001x4.nii.gz") == "0001x4"


def test_read_errors_name_file_and_shape(tmp_path):
    np.save(tmp_path / "flat.npy", np.zeros((4, 5), np.float32))
    tifffile.imwrite(tmp_path / "page.tif", np.zeros((4, 5), np.uint8))
    nibabel.save(
        nibabel.Nifti1Image(np.zeros((2, 3, 4, 5), np.float32), np.eye(4)), tmp_path / "four.nii.gz"
    )
    (tmp_path / "junk.npy").write_bytes(b"not an array")
    for name, shape in (("flat.npy", "4 x 5"), ("page.tif", "4 x 5"), ("four.nii.gz", "2 x 3")):
        for reader in (read_volume, volume_shape):
            with pytest.raises(UserError, match=rf"{name}.*\({shape}"):
                reader(tmp_path / name)
    with pytest.raises(UserError, match="cannot read the volume.*junk.npy"):
        read_volume(tmp_path / "junk.npy")
    # a trailing length-1 axis (NIfTI with one time point) is a volume
    nibabel.save(
        nibabel.Nifti1Image(np.ones((2, 3, 4, 1), np.float32), np.eye(4)), tmp_path / "one.nii"
    )
    assert read_volume(tmp_path / "one.nii").data.shape == (2, 3, 4)


# ---- the 48 symmetries of the cube --------------------------------------------------------


def test_cube_symmetries_form_the_group():
    cube = torch.arange(27).reshape(3, 3, 3)  # distinct values: a transform is its image
    images = [apply_cube_symmetry(cube, k) for k in range(NUM_CUBE_SYMMETRIES)]
    keys = [tuple(image.flatten().tolist()) for image in images]
    assert len(set(keys)) == 48  # distinct
    index = {key: k for k, key in enumerate(keys)}
    assert keys[0] == tuple(range(27))  # 0 is the identity
    for a, b in itertools.product(range(48), repeat=2):
        twice = tuple(apply_cube_symmetry(images[a], b).flatten().tolist())
        assert twice in index  # closed under composition
        assert index[twice] == compose_cube_symmetries(a, b)
    for k in range(48):
        back = apply_cube_symmetry(images[k], invert_cube_symmetry(k))
        assert torch.equal(back, cube)  # invertible
    # 24 rotations (det +1) and 24 reflections
    dets = [round(float(torch.det(cube_symmetry_matrix(k).double()))) for k in range(48)]
    assert dets.count(1) == 24 and dets.count(-1) == 24


# ---- paired volume folders ----------------------------------------------------------------


def _deeprock(tmp_path, scale=2, hr=12, formats=(".npy", ".tif", ".nii.gz")):
    """A DeepRock-SR-3D-like tree with box-downsampled LR volumes, one file per format."""
    root = tmp_path / "shuffled3D"
    rng = np.random.default_rng(1)
    for word in ("train", "valid"):
        hr_dir, lr_dir = (
            root / f"shuffled3D_{word}_HR",
            root / f"shuffled3D_{word}_LR_default_X{scale}",
        )
        hr_dir.mkdir(parents=True)
        lr_dir.mkdir(parents=True)
        for i, ext in enumerate(formats):
            high = rng.random((hr, hr, hr)).astype(np.float32)
            low = _box_down(high, scale)
            for folder, name, data in (
                (hr_dir, f"{i:04d}", high),
                (lr_dir, f"{i:04d}x{scale}", low),
            ):
                if ext == ".npy":
                    np.save(folder / f"{name}.npy", data)
                elif ext == ".tif":
                    tifffile.imwrite(folder / f"{name}.tif", data)
                else:
                    nibabel.save(nibabel.Nifti1Image(data, np.eye(4)), folder / f"{name}.nii.gz")
    return root


def test_paired_volume_datamodule_batches(tmp_path):
    root = _deeprock(tmp_path)
    data = PairedVolumeSRDataModule(
        root=str(root), scale=2, lr_patch_size=3, patches_per_volume=4, batch_size=4, seed=0
    )
    batch = next(iter(data.train_dataloader()))
    assert set(batch) == BATCH_KEYS
    assert batch["y"].shape == (4, 1, 3, 3, 3) and batch["target"].shape == (4, 1, 6, 6, 6)
    assert isinstance(batch["system"], Downsampling)
    # aligned crops with the same symmetry: box-downsampled HR patch == LR patch
    for low, high in zip(batch["y"], batch["target"], strict=True):
        torch.testing.assert_close(_torch_box_down(high, 2), low, rtol=1e-5, atol=1e-6)
    # validation: centre crops by default, whole volumes or a grid on request
    val = next(iter(data.val_dataloader()))
    assert val["y"].shape == (3, 1, 3, 3, 3)
    whole = PairedVolumeSRDataModule(
        root=str(root), scale=2, lr_patch_size=3, val_whole_volumes=True, batch_size=2
    )
    val = next(iter(whole.val_dataloader()))
    assert val["y"].shape == (2, 1, 6, 6, 6) and val["target"].shape == (2, 1, 12, 12, 12)
    grid = PairedVolumeSRDataModule(
        root=str(root), scale=2, lr_patch_size=3, val_patches_per_volume=8
    )
    items = [grid.val_set[i] for i in range(8)]
    assert len({tuple(item["y"].flatten()[:4].tolist()) for item in items}) == 8
    for item in items:
        torch.testing.assert_close(
            _torch_box_down(item["target"], 2), item["y"], rtol=1e-5, atol=1e-6
        )


def test_training_crops_use_the_cube_symmetries(tmp_path):
    root = _deeprock(tmp_path, formats=(".npy",))
    hr_dir, lr_dir = root / "shuffled3D_train_HR", root / "shuffled3D_train_LR_default_X2"
    folder = PairedVolumeFolder(hr_dir, lr_dir, scale=2, lr_patch_size=6)
    whole = read_volume(lr_dir / "0000x2.npy").data
    cube = torch.from_numpy(whole)
    images = {tuple(apply_cube_symmetry(cube, k).flatten().tolist()): k for k in range(48)}
    seen = set()
    for seed in range(200):
        low = folder[SeededIndex(0, seed)]["y"][0]  # the whole 6^3 LR volume, transformed
        seen.add(images[tuple(low.flatten().tolist())])
    assert len(seen) > 40  # 200 draws of 48 equally likely symmetries
    plain = PairedVolumeFolder(hr_dir, lr_dir, scale=2, lr_patch_size=6, augment=False)
    assert torch.equal(plain[SeededIndex(0, 3)]["y"][0], cube)


def test_paired_volume_errors(tmp_path):
    root = _deeprock(tmp_path, formats=(".npy",))
    bad = root / "shuffled3D_valid_LR_default_X2" / "0000x2.npy"
    np.save(bad, np.zeros((6, 6, 5), np.float32))
    with pytest.raises(
        UserError, match=r"0000x2\.npy.*\(6 x 6 x 5\).*scale 2.*0000\.npy.*\(12 x 12 x 12\)"
    ):
        PairedVolumeSRDataModule(root=str(root), scale=2, lr_patch_size=3)
    np.save(bad, np.zeros((6, 6, 6), np.float32))
    with pytest.raises(UserError, match="found .shuffled3D_train_HR. but no folder"):
        PairedVolumeSRDataModule(root=str(root), scale=4)
    with pytest.raises(UserError, match=r"smaller than lr_patch_size \(7\)"):
        PairedVolumeSRDataModule(root=str(root), scale=2, lr_patch_size=7)
    with pytest.raises(UserError, match="data.train_size is 2, more than the 1 volumes"):
        PairedVolumeSRDataModule(root=str(root), scale=2, lr_patch_size=3, train_size=2)
    (root / "shuffled3D_train_LR_default_X2" / "0000x2.npy").rename(
        root / "shuffled3D_train_LR_default_X2" / "0001x2.npy"
    )
    with pytest.raises(UserError, match="no low-resolution file"):
        PairedVolumeSRDataModule(root=str(root), scale=2, lr_patch_size=3)


# ---- the built-in brain volume ------------------------------------------------------------


def test_brain_volume_denoising_batches():
    from deepinv_lab.data import SimulationDataModule
    from deepinv_lab.data.physics.image import DenoisingPhysics
    from deepinv_lab.data.sources import BuiltinBrainVolume

    source = BuiltinBrainVolume(patch_size=16, patches_per_volume=4, val_patches_per_volume=2)
    data = SimulationDataModule(source, DenoisingPhysics(), batch_size=2)
    for loader in (data.train_dataloader(), data.val_dataloader()):
        batch = next(iter(loader))
        assert batch["y"].shape == (2, 1, 16, 16, 16) == batch["target"].shape
        assert batch["y"].dtype == torch.float32
        assert not torch.equal(batch["y"], batch["target"])  # noisy
        # anatomy: at least half of each patch is head (before the intensity scale)
        head = (batch["target"] / batch["max_value"].reshape(-1, 1, 1, 1, 1)) > 0.1
        assert head.float().mean(dim=(1, 2, 3, 4)).min() >= 0.5
    assert len(data.train_set) == 4 and len(data.val_set) == 2


def test_brain_volume_split_complex_and_errors():
    from deepinv_lab.data.sources import BuiltinBrainVolume
    from deepinv_lab.data.sources.brain_volume import SPLIT_SLABS

    (_, train_stop), (val_start, _) = SPLIT_SLABS["train"], SPLIT_SLABS["val"]
    assert train_stop < val_start  # disjoint slabs with a gap
    source = BuiltinBrainVolume(patch_size=(8, 12, 16))
    val = source.split("val", complex_images=True)
    item, _ = val.read(0)
    assert item["x"].dtype == torch.complex64 and item["x"].shape == (1, 8, 12, 16)
    torch.testing.assert_close(item["x"].abs(), item["target"])
    assert torch.equal(val.read(0)[0]["x"], item["x"])  # validation items are fixed
    pool = source.split("train", train_size=3)
    assert len(pool) == 3
    assert set(source.split("train", train_size=2).fixed) <= set(pool.fixed)  # nested
    with pytest.raises(UserError, match="does not fit in the val slab"):
        BuiltinBrainVolume(patch_size=90).split("val")
    with pytest.raises(UserError, match="patch_size"):
        BuiltinBrainVolume(patch_size=(8, 8))
    with pytest.raises(UserError, match="not both"):
        BuiltinBrainVolume(patches_per_volume=4).split("train", train_size=2)


def test_rcan3d_config_trains_on_deeprock_folders_from_the_command_line(tmp_path, capsys):
    """``configs/rcan3d_sr.json`` with its data swapped for DeepRock-SR-3D folders on the command
    line (the README's row): fits, validates against tricubic, and saves a checkpoint."""
    from pathlib import Path

    from deepinv_lab.cli import main
    from tests import tiny

    root = _deeprock(tmp_path, scale=4, hr=32, formats=(".npy", ".tif"))
    config = Path(__file__).parents[1] / "configs" / "rcan3d_sr.json"
    recon = "--model.init_args.recon.init_args.model.init_args."
    args = ["fit", "--config", str(config), *tiny.overrides("trainer", tiny.TRAINER),
            f"--trainer.logger.init_args.save_dir={tmp_path / 'logs'}",
            "--data", "deepinv_lab.data.PairedVolumeSRDataModule", f"--data.root={root}",
            "--data.lr_patch_size=4", "--data.batch_size=2", f"{recon}chans=4",
            f"{recon}num_groups=1", f"{recon}num_blocks=1", f"{recon}reduction=2"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "val/psnr=" in out and "val/baseline_psnr=" in out
    assert list((tmp_path / "logs").glob("rcan3d_sr/version_0/checkpoints/last.ckpt"))
