"""Simulated data from config blocks: a ground-truth source measured by a physics
(deepinv_lab.data.sources, deepinv_lab.data.physics, SimulationDataModule)."""

import json
import math
import re
from pathlib import Path

import pytest
import torch

from deepinv_lab.data.physics import (
    BirdcageCoils,
    CartesianMask,
    CartesianMRIPhysics,
    CompressedSensingPhysics,
    DenoisingPhysics,
    EspiritEstimate,
    Gaussian,
    InpaintingPhysics,
    LinearPhysics,
    NonCartesianMRIPhysics,
    Poisson,
    RadialTrajectory,
    SingleCoilMRIPhysics,
)
from deepinv_lab.data.simulation_datamodule import SimulationDataModule
from deepinv_lab.data.sources import BuiltinBrain, BuiltinPhotos
from deepinv_lab.errors import UserError
from deepinv_lab.functional import fft2c
from deepinv_lab.systems import Downsampling

BRAIN = dict(image_size=(224, 192), downsample=4)  # 56 x 48


def brain_physics():
    coils = BirdcageCoils(num_coils=3)
    return {
        "cartesian": CartesianMRIPhysics(coils=coils, noise=Gaussian(sigma=0.01)),
        "poisson_disc": CartesianMRIPhysics(
            mask=CartesianMask("poisson_disc", [3], calib=(8, 8)), coils=coils
        ),
        "single_coil": SingleCoilMRIPhysics(noise=Gaussian(sigma=0.01)),
        "radial": NonCartesianMRIPhysics(
            RadialTrajectory(num_spokes=12), coils, Gaussian(sigma=0.01)
        ),
    }


def photo_physics():
    return {
        "denoising": DenoisingPhysics(Gaussian(sigma_range=(0.01, 0.1))),
        "poisson": DenoisingPhysics(Poisson(gain=30.0)),
        "inpainting": InpaintingPhysics(0.5, Gaussian(sigma=0.01)),
        "cs": CompressedSensingPhysics(0.25, noise=Gaussian(sigma=0.01)),
        "sr_noisy": LinearPhysics(Downsampling(2), Gaussian(sigma=0.01)),
    }


def datamodule(name: str, **kwargs) -> SimulationDataModule:
    if name in brain_physics():
        return SimulationDataModule(BuiltinBrain(**BRAIN), brain_physics()[name], **kwargs)
    return SimulationDataModule(BuiltinPhotos(patch_size=16), photo_physics()[name], **kwargs)


ALL = [*brain_physics(), *photo_physics()]


def first_batch(dm: SimulationDataModule, split: str = "train") -> dict:
    loader = dm.train_dataloader() if split == "train" else dm.val_dataloader()
    return dm.on_after_batch_transfer(next(iter(loader)), 0)


@pytest.mark.parametrize("name", ALL)
def test_device_simulation_equals_worker_simulation(name):
    """The same items, measured one by one in the loader or batched after the transfer."""
    workers = first_batch(datamodule(name, batch_size=2))
    device = first_batch(datamodule(name, batch_size=2, simulate_on="device"))
    assert "x" not in device
    torch.testing.assert_close(device["y"], workers["y"], rtol=1e-5, atol=1e-6)
    assert type(device["system"]) is type(workers["system"])
    x = torch.randn_like(workers["target"]) if not workers["y"].is_complex() else None
    if x is not None and name not in ("denoising", "poisson"):
        torch.testing.assert_close(device["system"](x), workers["system"](x))


def test_items_do_not_depend_on_workers():
    """An item's draws come from (seed, epoch, index): a worker process gives the same batch,
    FINUFFT included."""
    main = first_batch(datamodule("radial", batch_size=2))
    forked = first_batch(datamodule("radial", batch_size=2, num_workers=1))
    torch.testing.assert_close(forked["y"], main["y"])
    torch.testing.assert_close(forked["trajectory"], main["trajectory"])


def test_cartesian_measurements_are_masked_noisy_kspace():
    """y = M (F S x + n): exactly the noiseless k-space plus noise of level sigma on the sampled
    locations, and zero elsewhere."""
    dm = datamodule("cartesian", batch_size=1)
    item, generator = dm.val_set.items.read(0)
    batch = first_batch(dm, "val")
    x = item["x"][None]
    clean = batch["mask"] * fft2c(batch["coil_maps"] * x)
    noise = batch["y"] - clean
    sampled = (batch["mask"] > 0).expand_as(noise)
    assert noise[~sampled].abs().max() == 0
    assert math.isclose(float(noise[sampled].abs().pow(2).mean().sqrt()), 0.01, rel_tol=0.05)
    torch.testing.assert_close(batch["target"], x.abs())


def test_radial_measurements_are_density_weighted():
    """The operator with density compensation sees sqrt(w) (F S x + n): noiseless data equals
    A x, and A^H y is the gridding reconstruction."""
    physics = NonCartesianMRIPhysics(RadialTrajectory(num_spokes=16), BirdcageCoils(2))
    dm = SimulationDataModule(BuiltinBrain(**BRAIN), physics, batch_size=1)
    item, _ = dm.val_set.items.read(0)
    batch = first_batch(dm, "val")
    torch.testing.assert_close(batch["system"](item["x"][None]), batch["y"], rtol=1e-4, atol=1e-6)


def test_noise_levels_are_drawn_per_item_in_their_range():
    dm = datamodule("denoising", batch_size=8)
    batch = first_batch(dm)
    sigma = batch["sigma"]
    assert sigma.shape == (8,) and (sigma >= 0.01).all() and (sigma <= 0.1).all()
    assert len(set(sigma.tolist())) == 8
    residual = (batch["y"] - batch["target"]).flatten(1).std(dim=1)
    torch.testing.assert_close(residual, sigma, rtol=0.15, atol=0.0)


def test_poisson_noise_has_the_photon_statistics():
    dm = SimulationDataModule(BuiltinPhotos(patch_size=64), DenoisingPhysics(Poisson(gain=10.0)))
    batch = first_batch(dm)
    x, y = batch["target"], batch["y"]
    assert torch.allclose((y * 10).round(), y * 10, atol=1e-4)  # photon counts / gain
    variance = ((y - x) ** 2).mean() / x.mean()
    assert math.isclose(float(variance), 1 / 10, rel_tol=0.1)


def test_inpainting_keeps_missing_pixels_at_zero():
    batch = first_batch(datamodule("inpainting", batch_size=4))
    mask = batch["mask"]
    assert (batch["y"][mask.expand_as(batch["y"]) == 0] == 0).all()
    assert float(mask.mean()) == pytest.approx(0.5, abs=1e-6)


def test_estimated_maps_replace_the_true_ones():
    """ESPIRiT from the measured calibration block: the System carries the estimated maps; the
    true ones stay in the batch, and the two agree up to a phase inside the object."""
    physics = CartesianMRIPhysics(
        mask=CartesianMask("poisson_disc", [3], calib=(16, 16)),
        coils=BirdcageCoils(4),
        estimate_maps=EspiritEstimate(calib_width=16, kernel_width=5, crop=0.0),
    )
    dm = SimulationDataModule(BuiltinBrain(**BRAIN), physics)
    batch = first_batch(dm, "val")
    estimated, true = batch["system"].coil_maps, batch["true_coil_maps"]
    assert not torch.equal(estimated, true)
    inside = batch["target"][:, 0] > 0.2
    correlation = (estimated.conj() * true).sum(1).abs()
    norms = estimated.abs().pow(2).sum(1).sqrt() * true.abs().pow(2).sum(1).sqrt()
    assert float((correlation / norms)[inside].min()) > 0.95


def test_train_items_change_with_the_epoch_and_validation_items_do_not():
    dm = datamodule("radial", batch_size=1)
    first = first_batch(dm)
    dm.train_dataloader().sampler.set_epoch(1)
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(1)
    second = dm.on_after_batch_transfer(next(iter(loader)), 0)
    assert not torch.equal(first["trajectory"], second["trajectory"])
    torch.testing.assert_close(first_batch(dm, "val")["y"], first_batch(dm, "val")["y"])


# --- bad input: one clear line naming the parts ----------------------------------------------


def test_noise_level_out_of_range():
    with pytest.raises(UserError, match=r"sigma must be a finite number >= 0, got -0.1"):
        Gaussian(sigma=-0.1)
    with pytest.raises(UserError, match=r"sigma_range must be \(low, high\)"):
        Gaussian(sigma_range=(0.2, 0.1))
    with pytest.raises(UserError, match=r"gain must be a finite number > 0"):
        Poisson(gain=0)


def test_mask_that_does_not_fit_the_images():
    physics = CartesianMRIPhysics(mask=CartesianMask("poisson_disc", [4], calib=(64, 64)))
    with pytest.raises(UserError, match=r"data.physics CartesianMRIPhysics cannot measure the "
                       r"images of data.source BuiltinBrain \(shape \(1, 56, 48\)\)"):  # fmt: skip
        SimulationDataModule(BuiltinBrain(**BRAIN), physics)


def test_complex_physics_needs_a_complex_source():
    with pytest.raises(UserError, match="measures complex images, and data.source BuiltinPhotos"):
        SimulationDataModule(BuiltinPhotos(), CartesianMRIPhysics())


def test_source_without_images():
    class Empty(BuiltinPhotos):
        def split(self, split, train_size=None, complex_images=False):
            return []

    with pytest.raises(UserError, match="data.source Empty has no val images"):
        SimulationDataModule(Empty(), DenoisingPhysics())


def test_bad_simulate_on():
    with pytest.raises(UserError, match="data.simulate_on must be one of"):
        datamodule("denoising", simulate_on="gpu")


RADIAL_CONFIG = Path(__file__).parents[1] / "configs" / "radial_modl.json"


@pytest.mark.parametrize(
    "recon, expected",
    [
        ("deepinv_lab.recons.VarNet", r"model.recon VarNet cannot reconstruct data.physics "
         r"NonCartesianMRIPhysics.*Cartesian"),
        ("deepinv_lab.recons.Denoiser", r"model.recon Denoiser cannot reconstruct data.physics "
         r"NonCartesianMRIPhysics"),
    ],
)  # fmt: skip
def test_recon_that_does_not_fit_the_physics_fails_at_start_up(recon, expected, tmp_path, capsys):
    """Radial k-space given to a Recon that needs a Cartesian mask (VarNet) or image-domain
    measurements (Denoiser): one line on stderr naming both blocks, before any step runs."""
    from deepinv_lab.cli import main

    args = [
        "fit",
        "--config",
        str(RADIAL_CONFIG),
        f"--trainer.logger.init_args.save_dir={tmp_path}",
        "--data.init_args.source.init_args.downsample=4",
        "--model.init_args.recon",
        json.dumps({"class_path": recon, "init_args": {}}
                   if recon.endswith("VarNet") else
                   {"class_path": recon, "init_args": {"model": {
                       "class_path": "deepinv_lab.models.DnCNN",
                       "init_args": {"in_chans": 1, "num_layers": 2, "chans": 4}}}}),
    ]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(expected, err[0]), err
    assert not (tmp_path / "radial_modl").exists()  # nothing ran
