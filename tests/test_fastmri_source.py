"""fastMRI files as a ground-truth source (FastMRICoilImages): the coil images of fully sampled
k-space, measured by any MRI physics with new masks, trajectories and noise, with coil maps
estimated from the simulated measurements only."""

from pathlib import Path

import h5py
import pytest
import torch

from deepinv_lab.cli import main
from deepinv_lab.data import SimulationDataModule
from deepinv_lab.data.physics import (
    CartesianMask,
    CartesianMRIPhysics,
    DenoisingPhysics,
    EspiritEstimate,
    Gaussian,
    LowResolutionMaps,
    NonCartesianMRIPhysics,
    RadialTrajectory,
)
from deepinv_lab.data.sources import FastMRICoilImages
from deepinv_lab.errors import UserError
from deepinv_lab.functional import fft2c, ifft2c
from deepinv_lab.recons import CGSense, ZeroFilled
from deepinv_lab.systems.mri import MultiCoilFourier, MultiCoilMRI
from deepinv_lab.systems.nufft import MultiCoilNUFFT
from tests import tiny
from tests.fastmri_files import cropped_nmse, write_brain_volume, write_fastmri_dir

SHAPE = (96, 80)  # k-space matrix (readout, phase encode)
RECON = (64, 64)  # the header's reconstruction size: the target


@pytest.fixture(scope="module")
def brain_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("brain")
    write_brain_volume(root / "brain_multicoil_train" / "file1.h5", [60, 75, 85], SHAPE, RECON)
    write_brain_volume(root / "brain_multicoil_val" / "file2.h5", [95, 105], SHAPE, RECON)
    return root


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPINV_LAB_CACHE_DIR", str(tmp_path / "cache"))


def test_items_are_the_files_coil_images_and_targets(brain_root):
    items = FastMRICoilImages(str(brain_root)).split("val", complex_images=True)
    assert len(items) == 2
    item, _ = items.read(1)
    with h5py.File(brain_root / "brain_multicoil_val" / "file2.h5") as f:
        kspace = torch.from_numpy(f["kspace"][1])
        maximum = f.attrs["max"]
        stored = torch.from_numpy(f["reconstruction_rss"][1]) / maximum
    assert item["x"].shape == (8, *SHAPE) and item["x"].dtype == torch.complex64
    torch.testing.assert_close(item["x"], ifft2c(kspace) / maximum)
    assert item["target"].shape == (1, *RECON)
    torch.testing.assert_close(item["target"][0], stored, atol=1e-5, rtol=1e-4)
    assert float(item["max_value"]) == 1.0 and item["fname"] == "file2.h5"

    raw, _ = FastMRICoilImages(str(brain_root), normalize=False).split("val", True, True).read(1)
    assert float(raw["max_value"]) == pytest.approx(float(maximum))


def test_cartesian_physics_acquires_the_coil_images_coil_by_coil(brain_root):
    physics = CartesianMRIPhysics(mask=CartesianMask("random", (4,), (0.08,)))
    data = SimulationDataModule(FastMRICoilImages(str(brain_root)), physics)
    item, generator = data.val_set.items.read(0)
    batch = data.example_batch()
    assert isinstance(batch["system"], MultiCoilFourier)  # no maps: VarNet, ZeroFilled(rss)
    assert "coil_maps" not in batch
    expected = batch["mask"][0] * fft2c(item["x"])
    torch.testing.assert_close(batch["y"][0], expected)
    output = ZeroFilled()(batch["y"], batch["system"])
    assert cropped_nmse(output, batch["target"]) < 0.05


def test_espirit_maps_from_the_simulated_acs_serve_cg_sense(brain_root):
    """2D Poisson-disc undersampling of real coil images, maps from its calibration block: the
    setting of 2D-undersampling studies on fastMRI. CG-SENSE with them is close to the truth
    (NMSE 4e-4 measured) and far better than the zero-filled image (2.5e-3)."""
    physics = CartesianMRIPhysics(
        mask=CartesianMask("poisson_disc", (6,), calib=(24, 24)),
        noise=Gaussian(sigma=0.002),
        estimate_maps=EspiritEstimate(calib_width=24),
    )
    batch = SimulationDataModule(FastMRICoilImages(str(brain_root)), physics).example_batch()
    system = batch["system"]
    assert isinstance(system, MultiCoilMRI) and "true_coil_maps" not in batch
    assert system.coil_maps.shape == (1, 8, *SHAPE)
    cg = CGSense(damping=0.01, max_iter=50, on_failure="ignore")(batch["y"], system)
    zero_filled = ZeroFilled("adjoint")(batch["y"], system)
    assert cropped_nmse(cg, batch["target"]) < 1.5e-3
    assert cropped_nmse(cg, batch["target"]) < 0.5 * cropped_nmse(zero_filled, batch["target"])


def test_radial_sampling_of_coil_images_with_low_resolution_maps(brain_root):
    """Radial k-space simulated from real coil images; maps from the gridded k-space centre.
    CG-SENSE NMSE 3e-4 measured, zero-filled gridding 4e-3."""
    physics = NonCartesianMRIPhysics(
        trajectory=RadialTrajectory(48),
        noise=Gaussian(sigma=0.002),
        estimate_maps=LowResolutionMaps(),
    )
    data = SimulationDataModule(FastMRICoilImages(str(brain_root)), physics, simulate_on="device")
    batch = data.example_batch()
    assert isinstance(batch["system"], MultiCoilNUFFT)
    assert batch["y"].shape == (1, 8, 48 * 2 * max(SHAPE))
    cg = CGSense(damping=0.01, max_iter=50, on_failure="ignore")(batch["y"], batch["system"])
    gridding = ZeroFilled("adjoint")(batch["y"], batch["system"])
    assert cropped_nmse(cg, batch["target"]) < 1.5e-3
    assert cropped_nmse(cg, batch["target"]) < 0.5 * cropped_nmse(gridding, batch["target"])
    # device simulation (on the CPU here) gives the workers' batch
    device_batch = data.on_after_batch_transfer(
        data.collate_fn([data.val_set[0]]), dataloader_idx=0
    )
    torch.testing.assert_close(device_batch["y"], batch["y"])


def test_low_resolution_maps_span_the_true_maps_inside_the_object():
    """Single-channel ground truth and birdcage maps: the estimate spans the true maps inside the
    object (the maps differ by the object's low-resolution phase, which the test removes)."""
    from deepinv_lab.data.sources import BuiltinBrain

    physics = NonCartesianMRIPhysics(
        trajectory=RadialTrajectory(64), estimate_maps=LowResolutionMaps()
    )
    batch = SimulationDataModule(BuiltinBrain(downsample=2), physics).example_batch()
    true, estimated = batch["true_coil_maps"], batch["coil_maps"]
    inner = (estimated.conj() * true).sum(1, keepdim=True)
    error = (true - inner * estimated).norm(dim=1) / true.norm(dim=1)
    inside = batch["target"][:, 0] > 0.2 * batch["target"].max()
    assert error[inside].median() < 0.05


def test_non_cartesian_coil_images_need_a_map_estimate(brain_root):
    with pytest.raises(UserError, match="estimate_maps"):
        SimulationDataModule(FastMRICoilImages(str(brain_root)), NonCartesianMRIPhysics())


def test_bad_input_names_the_file_or_the_block(tmp_path, brain_root):
    with pytest.raises(UserError, match="MRI physics"):
        SimulationDataModule(FastMRICoilImages(str(brain_root)), DenoisingPhysics())
    with pytest.raises(UserError, match="no multicoil_train"):
        FastMRICoilImages(str(tmp_path))
    write_fastmri_dir(tmp_path / "multicoil_train", 1, with_rss=False, with_mask=True)
    write_fastmri_dir(tmp_path / "multicoil_val", 1)
    with pytest.raises(UserError, match=r"file1000\.h5: a test-set file"):
        FastMRICoilImages(str(tmp_path)).split("train", complex_images=True)
    with pytest.raises(UserError, match="train_size must be between 1 and 3"):
        SimulationDataModule(
            FastMRICoilImages(str(brain_root)), CartesianMRIPhysics(), train_size=7
        )


def test_train_size_takes_nested_subsets_and_mixed_coils_bucket(tmp_path):
    write_fastmri_dir(tmp_path / "multicoil_train", 2, num_coils=4, num_slices=3)
    write_fastmri_dir(tmp_path / "multicoil_train", 1, first_id=2000, num_coils=6, num_slices=2)
    write_fastmri_dir(tmp_path / "multicoil_val", 1)
    source = FastMRICoilImages(str(tmp_path))
    small = source.split("train", 2, complex_images=True)
    large = source.split("train", 5, complex_images=True)
    names = {(small.read(i)[0]["fname"], int(small.read(i)[0]["slice_num"])) for i in range(2)}
    larger = {(large.read(i)[0]["fname"], int(large.read(i)[0]["slice_num"])) for i in range(5)}
    assert names < larger
    keys = source.split("train", complex_images=True).bucket_keys()
    assert sorted(set(keys)) == [(4, 32, 24, 16, 16), (6, 32, 24, 16, 16)]


def test_fit_radial_modl_on_fastmri_files_from_the_command_line(brain_root, tmp_path, capsys):
    """The documented swap: configs/radial_modl.json with fastMRI files as its source."""
    config = Path(__file__).parents[1] / "configs" / "radial_modl.json"
    recon = "--model.init_args.recon.init_args."
    args = [
        "fit",
        f"--config={config}",
        "--data.init_args.source=deepinv_lab.data.sources.FastMRICoilImages",
        f"--data.init_args.source.init_args.root={brain_root}",
        "--data.init_args.physics.init_args.estimate_maps="
        "deepinv_lab.data.physics.LowResolutionMaps",
        *tiny.overrides("trainer", tiny.TRAINER),
        f"--trainer.logger.init_args.save_dir={tmp_path}",
        f"{recon}num_iterations=1",
        f"{recon}denoiser.init_args.chans=4",
        f"{recon}cg_max_iter=3",
    ]
    assert main(args) == 0
    assert "val/ssim=" in capsys.readouterr().out
