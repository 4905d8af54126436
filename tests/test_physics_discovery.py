"""Every System block trains from a JSON config: each concrete System class of
deepinv_lab.systems is measured by a physics built from config blocks and fitted for one step,
or is listed here with the reason it cannot take part. A new System fails
``test_every_system_is_trained_or_excused`` until it is added to one of the two tables."""

import copy
import json

import pytest
from jsonargparse import ArgumentParser

from deepinv_lab.cli import main
from deepinv_lab.data.physics import Physics
from deepinv_lab.discovery import subclasses
from deepinv_lab.systems.base import System
from tests import tiny

P = "deepinv_lab.data.physics."
BRAIN = {"class_path": "deepinv_lab.data.sources.BuiltinBrain",
         "init_args": {"image_size": [224, 192], "downsample": 4}}  # fmt: skip
PHOTOS = {"class_path": "deepinv_lab.data.sources.BuiltinPhotos", "init_args": {"patch_size": 16}}
NOISE = {"class_path": P + "Gaussian", "init_args": {"sigma": 0.01}}
COILS = {"class_path": P + "BirdcageCoils", "init_args": {"num_coils": 2}}
DOWN = {"class_path": "deepinv_lab.systems.Downsampling", "init_args": {"factor": 2}}
IDENTITY = {"class_path": "deepinv_lab.systems.Identity"}
VOLUME = {"class_path": "deepinv_lab.data.sources.BuiltinBrainVolume",
          "init_args": {"patch_size": [8, 16, 16]}}  # fmt: skip
#: Systems of volumes: their Recons are built for 3D (recon_for)
VOLUME_SYSTEMS = {"FFT3", "MultiCoilMRI3D"}


def linear(system: dict, complex_images: bool = False) -> dict:
    init = {"system": system, "noise": NOISE, "complex_images": complex_images}
    return {"class_path": P + "LinearPhysics", "init_args": init}


#: System class -> (source, physics) whose measurements it makes.
TRAINED = {
    "FFT2": (BRAIN, linear({"class_path": "deepinv_lab.systems.FFT2"}, complex_images=True)),
    "Identity": (PHOTOS, linear(IDENTITY)),
    "FFT3": (VOLUME, linear({"class_path": "deepinv_lab.systems.FFT3"}, complex_images=True)),
    "MultiCoilMRI3D": (
        VOLUME,
        {
            "class_path": P + "Cartesian3DMRIPhysics",
            "init_args": {
                "mask": {
                    "class_path": P + "CartesianMask",
                    "init_args": {"mask_type": "poisson_disc", "calib": [4, 4]},
                },
                "coils": {"class_path": P + "BirdcageCoils3D", "init_args": {"num_coils": 2}},
                "noise": NOISE,
            },
        },
    ),  # fmt: skip
    "Downsampling": (PHOTOS, linear(DOWN)),
    "Composition": (
        PHOTOS,
        linear(
            {
                "class_path": "deepinv_lab.systems.Composition",
                "init_args": {"systems": [DOWN, IDENTITY]},
            }
        ),
    ),  # fmt: skip
    "Sum": (
        PHOTOS,
        linear(
            {
                "class_path": "deepinv_lab.systems.Sum",
                "init_args": {"systems": [IDENTITY, IDENTITY]},
            }
        ),
    ),  # fmt: skip
    "Scaled": (
        PHOTOS,
        linear(
            {
                "class_path": "deepinv_lab.systems.Scaled",
                "init_args": {"system": DOWN, "scale": 0.5},
            }
        ),
    ),  # fmt: skip
    "MultiCoilMRI": (
        BRAIN,
        {"class_path": P + "CartesianMRIPhysics", "init_args": {"coils": COILS, "noise": NOISE}},
    ),  # fmt: skip
    "SingleCoilMRI": (
        BRAIN,
        {"class_path": P + "SingleCoilMRIPhysics", "init_args": {"noise": NOISE}},
    ),  # fmt: skip
    "MultiCoilNUFFT": (
        BRAIN,
        {
            "class_path": P + "NonCartesianMRIPhysics",
            "init_args": {
                "trajectory": {
                    "class_path": P + "RadialTrajectory",
                    "init_args": {"num_spokes": 8},
                },
                "coils": COILS,
                "noise": NOISE,
            },
        },
    ),  # fmt: skip
    "CompressedSensing": (
        PHOTOS,
        {
            "class_path": P + "CompressedSensingPhysics",
            "init_args": {"ratio": 0.25, "noise": NOISE},
        },
    ),  # fmt: skip
    "Inpainting": (
        PHOTOS,
        {"class_path": P + "InpaintingPhysics", "init_args": {"missing": 0.5, "noise": NOISE}},
    ),  # fmt: skip
    "GaussianNoise": (
        PHOTOS,
        {"class_path": P + "DenoisingPhysics", "init_args": {"noise": NOISE}},
    ),
    "PoissonNoise": (
        PHOTOS,
        {
            "class_path": P + "DenoisingPhysics",
            "init_args": {"noise": {"class_path": P + "Poisson", "init_args": {"gain": 20.0}}},
        },
    ),  # fmt: skip
}
#: System classes that do not measure ground truth themselves, and why.
EXCUSED = {
    "Wavelet2D": "a sparsifying transform (the Psi of l1-wavelet priors), not a measurement model",
    "Adjoint": "the algebra's A^H, a view of another System (maps measurements to images)",
    "Normal": "the algebra's A^H A, a view of another System used by solvers",
    "Stack": "its measurements are a tuple of tensors; a batch carries one tensor 'y'",
    "MaskedComposition": "the base class of the Cartesian MRI Systems, trained as MultiCoilMRI "
    "and SingleCoilMRI",
    "KSpaceMask": "a factor of the Cartesian MRI Systems, trained within MultiCoilMRI",
    "CoilSensitivity": "a factor of the MRI Systems, trained within MultiCoilMRI",
    "MultiCoilFourier": "the System of raw multicoil files (fastMRI data), which carry no maps",
    "NUFFT": "the single-coil factor of MultiCoilNUFFT, trained within it",
    "ComplexGaussianNoise": "the noise model Gaussian draws complex noise for complex "
    "measurements (the MRI physics)",
    "RandomSigmaGaussianNoise": "the noise model Gaussian(sigma_range=...) draws the levels per "
    "item; denoising batches carry them in a GaussianNoise",
}
#: the concrete System classes (LinearSystem is the abstract base of the linear ones)
SYSTEMS = {
    cls.__name__: cls
    for cls in subclasses(System, "deepinv_lab.systems")
    if cls.__name__ != "LinearSystem"
}


def test_every_system_is_trained_or_excused():
    assert set(TRAINED) | set(EXCUSED) == set(SYSTEMS)
    assert not set(TRAINED) & set(EXCUSED)


def recon_for(name: str, complex_images: bool) -> dict:
    if name == "MultiCoilMRI3D":  # a 2D Recon on the ky-kz slices of the decoupled readout
        inner = recon_for("MultiCoilMRI", complex_images)
        return {"class_path": "deepinv_lab.recons.ReadoutDecoupled", "init_args": {"recon": inner}}
    if name in VOLUME_SYSTEMS:
        denoiser = {
            "class_path": "deepinv_lab.models.DnCNN",
            "init_args": {"in_chans": 2, "num_layers": 2, "chans": 4, "spatial_dims": 3},
        }
        return {
            "class_path": "deepinv_lab.recons.UnrolledProximalGradient",
            "init_args": {"denoiser": denoiser, "num_iterations": 1, "step_size": 0.1},
        }
    if name in ("GaussianNoise", "PoissonNoise"):
        model = {"class_path": "deepinv_lab.models.DnCNN",
                 "init_args": {"in_chans": 1, "num_layers": 2, "chans": 4}}  # fmt: skip
        return {"class_path": "deepinv_lab.recons.Denoiser", "init_args": {"model": model}}
    chans = {"in_chans": 2 if complex_images else 1, "num_layers": 2, "chans": 4}
    denoiser = {"class_path": "deepinv_lab.models.ResNetDenoiser", "init_args": chans}
    return {"class_path": "deepinv_lab.recons.UnrolledProximalGradient",
            "init_args": {"denoiser": denoiser, "num_iterations": 1, "step_size": 0.1}}  # fmt: skip


def instantiate_physics(block: dict) -> Physics:
    parser = ArgumentParser()
    parser.add_argument("--physics", type=Physics)
    return parser.instantiate(parser.parse_object({"physics": copy.deepcopy(block)})).physics


@pytest.mark.parametrize("name", sorted(TRAINED))
def test_system_trains_from_a_config(name, tmp_path, capsys):
    source, physics = TRAINED[name]
    built = instantiate_physics(physics)
    from deepinv_lab.data.simulation_datamodule import SimulationDataModule

    batch = SimulationDataModule(instantiate_source(source), built, batch_size=2).example_batch()
    parts = [batch["system"], *batch["system"].modules(), *built.operator(batch).modules()]
    assert any(type(part) is SYSTEMS[name] for part in parts), f"no {name} in {parts}"

    config = {
        "seed_everything": 0,
        "trainer": {"logger": {"class_path": "pytorch_lightning.loggers.TensorBoardLogger",
                               "init_args": {"save_dir": str(tmp_path), "name": name}}},
        "model": {"class_path": "deepinv_lab.training.module.ReconModule",
                  "init_args": {"recon": recon_for(name, built.complex_images), "loss": "mse"}},
        "data": {"class_path": "deepinv_lab.data.SimulationDataModule",
                 "init_args": {"source": source, "physics": physics, "batch_size": 2}},
    }  # fmt: skip
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    assert main(["fit", "--config", str(path), *tiny.overrides("trainer", tiny.TRAINER)]) == 0
    assert "val/psnr=" in capsys.readouterr().out


def instantiate_source(block: dict):
    from deepinv_lab.data.sources import Source

    parser = ArgumentParser()
    parser.add_argument("--source", type=Source)
    return parser.instantiate(parser.parse_object({"source": copy.deepcopy(block)})).source
