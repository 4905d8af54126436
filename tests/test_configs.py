"""Every config in configs/ trains: ``deepinv-lab fit`` for two steps with tiny overrides (small
networks, few iterations, small images), then one validation pass."""

import json
import re
from pathlib import Path

import pytest

from deepinv_lab.cli import main
from tests import tiny
from tests.fastmri_files import write_brain_volume

CONFIGS = sorted(Path(__file__).parents[1].joinpath("configs").glob("*.json"))
RECON = "--model.init_args.recon.init_args."
TINY_MRI = ["--data.init_args.downsample=4", "--data.init_args.num_coils=2"]
TINY_IMAGES = ["--data.init_args.patch_size=32", "--data.init_args.batch_size=2"]
#: the same for configs that compose ``SimulationDataModule`` from a source and a physics block
SOURCE = "--data.init_args.source.init_args."
PHYSICS = "--data.init_args.physics.init_args."
TINY_BRAIN = [f"{SOURCE}downsample=4"]
TINY_PHOTOS = [f"{SOURCE}patch_size=32", "--data.init_args.batch_size=2"]
TINY_MODL = [
    f"{RECON}num_iterations=2",
    f"{RECON}denoiser.init_args.chans=4",
    f"{RECON}cg_max_iter=3",
]
#: the Recon inside a Normalized wrapper
INNER = "--model.init_args.recon.init_args.recon.init_args."
TINY_FASTMRI = ["--data.init_args.num_workers=0", "--data.init_args.acquisitions=null"]
TINY_PRIOR = [f"{RECON}num_iterations=2", f"{RECON}denoiser.init_args.chans=4"]
TINY_VARNET = tiny.overrides("model.init_args.recon.init_args", tiny.VARNET)
#: per config: overrides that make it fast (architecture sizes, iterations, data size)
TINY = {
    "varnet": TINY_MRI + TINY_VARNET,
    "varnet_fastmri_leaderboard": TINY_MRI + TINY_VARNET,
    "cgsense": TINY_MRI + [f"{RECON}max_iter=5"],
    "modl": TINY_MRI
    + [
        f"{RECON}num_iterations=2",
        f"{RECON}denoiser.init_args.chans=4",
        f"{RECON}cg_max_iter=3",
    ],
    "proxgrad": TINY_MRI + [f"{RECON}num_iterations=2", f"{RECON}denoiser.init_args.chans=4"],
    "deq": TINY_MRI + [f"{RECON}max_iter=5", f"{RECON}denoiser.init_args.chans=4"],
    "unet_cs": TINY_MRI
    + [
        "--data.init_args.batch_size=2",
        f"{RECON}model.init_args.chans=4",
        f"{RECON}model.init_args.num_pool_layers=2",
    ],
    "bfcnn_denoise": TINY_IMAGES
    + [f"{RECON}model.init_args.num_layers=3", f"{RECON}model.init_args.chans=4"],
    "dncnn_denoise": TINY_IMAGES
    + [f"{RECON}model.init_args.num_layers=3", f"{RECON}model.init_args.chans=4"],
    "bfcnn_mohan": TINY_IMAGES
    + [f"{RECON}model.init_args.num_layers=3", f"{RECON}model.init_args.chans=4"],
    "dncnn_mohan": TINY_IMAGES
    + [f"{RECON}model.init_args.num_layers=3", f"{RECON}model.init_args.chans=4"],
    "bfcnn_mohan_full": TINY_IMAGES
    + [f"{RECON}model.init_args.num_layers=3", f"{RECON}model.init_args.chans=4"],
    "dncnn_mohan_full": TINY_IMAGES
    + [f"{RECON}model.init_args.num_layers=3", f"{RECON}model.init_args.chans=4"],
    "rcan_sr": TINY_IMAGES
    + [
        f"{RECON}model.init_args.chans=4",
        f"{RECON}model.init_args.num_groups=1",
        f"{RECON}model.init_args.num_blocks=1",
        f"{RECON}model.init_args.reduction=2",
    ],
    "rcan_microct": TINY_IMAGES
    + [
        f"{RECON}model.init_args.chans=4",
        f"{RECON}model.init_args.num_groups=1",
        f"{RECON}model.init_args.num_blocks=1",
        f"{RECON}model.init_args.reduction=2",
        # RCAN's memory options through the config
        f"{RECON}model.init_args.checkpoint_groups=true",
        f"{RECON}model.init_args.bottleneck=true",
        f"{RECON}model.init_args.inplace_activations=true",
    ],
    "srgan_microct": TINY_IMAGES
    + [
        f"{RECON}model.init_args.chans=4",
        f"{RECON}model.init_args.num_blocks=1",
        "--model.init_args.discriminator.init_args.input_size=64",
        "--data.init_args.patch_size=64",
        "--model.init_args.pretrain_epochs=0",
    ],
    "radial_modl": TINY_BRAIN
    + [f"{PHYSICS}coils.init_args.num_coils=2", f"{PHYSICS}trajectory.init_args.num_spokes=8"]
    + TINY_MODL,
    "poisson_modl": TINY_BRAIN + [f"{PHYSICS}coils.init_args.num_coils=2"] + TINY_MODL,
    "singlecoil_modl": TINY_BRAIN + TINY_MODL,
    "inpainting_unrolled": TINY_PHOTOS + TINY_PRIOR,
    "cs_unrolled": TINY_PHOTOS + TINY_PRIOR,
    "poisson_denoise": TINY_PHOTOS
    + [f"{RECON}model.init_args.num_layers=3", f"{RECON}model.init_args.chans=4"],
    "sr_noisy": TINY_PHOTOS
    + [
        f"{RECON}model.init_args.chans=4",
        f"{RECON}model.init_args.num_groups=1",
        f"{RECON}model.init_args.num_blocks=1",
        f"{RECON}model.init_args.reduction=2",
    ],
    # fastMRI configs: files written by the fastmri_root fixture (their root is added below)
    "modl_fastmri": TINY_FASTMRI
    + [
        f"{INNER}num_iterations=2",
        f"{INNER}denoiser.init_args.chans=4",
        f"{INNER}cg_max_iter=3",
    ],  # fmt: skip
    "deq_fastmri": TINY_FASTMRI + [f"{INNER}max_iter=5", f"{INNER}denoiser.init_args.chans=4"],
    "varnet_rcan_grappa": TINY_FASTMRI
    + tiny.overrides("model.init_args.recon.init_args.recon.init_args.recon.init_args", tiny.VARNET)
    + [
        f"{INNER}model.init_args.chans=4",
        f"{INNER}model.init_args.num_groups=1",
        f"{INNER}model.init_args.num_blocks=1",
        f"{INNER}model.init_args.reduction=2",
        f"{INNER}self_ensemble=x2",
    ],
    "varnet_rcan": TINY_MRI
    + tiny.overrides("model.init_args.recon.init_args.recon.init_args", tiny.VARNET)
    + [
        f"{RECON}model.init_args.chans=4",
        f"{RECON}model.init_args.num_groups=1",
        f"{RECON}model.init_args.num_blocks=1",
        f"{RECON}model.init_args.reduction=2",
    ],
    "pnp_inpainting": TINY_PHOTOS + [f"{RECON}num_iterations=2", f"{RECON}cg_max_iter=3"],
    "pnp_sr": TINY_PHOTOS + [f"{RECON}num_iterations=2", f"{RECON}cg_max_iter=3"],
    "pnp_mri": TINY_MRI + [f"{INNER}num_iterations=2", f"{INNER}cg_max_iter=3"],
    "lpd_mri": TINY_MRI
    + [f"{RECON}measurement_chans=4", f"{RECON}num_iterations=2", f"{RECON}chans=4"],
    "lpd_inpainting": TINY_PHOTOS + [f"{RECON}num_iterations=2", f"{RECON}chans=4"],
    "rcan3d_sr": [f"{SOURCE}patch_size=16", "--data.init_args.batch_size=2"]
    + [
        f"{RECON}model.init_args.chans=4",
        f"{RECON}model.init_args.num_groups=1",
        f"{RECON}model.init_args.num_blocks=1",
        f"{RECON}model.init_args.reduction=2",
    ],
    # the discriminator's valid convolutions need HR patches of at least 61^3: the quick 64^3
    "srgan3d_microct": [
        "--data.init_args.batch_size=2",
        f"{RECON}model.init_args.chans=4",
        f"{RECON}model.init_args.num_blocks=1",
        "--model.init_args.discriminator.init_args.chans=4",
        "--model.init_args.pretrain_epochs=0",
    ],
    "varnet3d_cartesian": [f"{SOURCE}patch_size=[8,32,32]", f"{RECON}chunk_size=4"]
    + tiny.overrides("model.init_args.recon.init_args.recon.init_args", tiny.VARNET)
    + [f"{PHYSICS}coils.init_args.num_coils=2", f"{PHYSICS}mask.init_args.calib=[8,8]"],
}


def test_every_config_has_tiny_overrides():
    assert {config.stem for config in CONFIGS} == set(TINY)


@pytest.fixture(scope="module")
def fastmri_root(tmp_path_factory) -> Path:
    """fastMRI-layout files of real anatomy (the built-in brain with birdcage coils)."""
    root = tmp_path_factory.mktemp("fastmri")
    write_brain_volume(root / "multicoil_train" / "file1.h5", [60, 75], (96, 96), (64, 64), 4)
    write_brain_volume(root / "multicoil_val" / "file2.h5", [95, 105], (96, 96), (64, 64), 4)
    return root


@pytest.fixture(scope="module")
def denoiser_checkpoint(tmp_path_factory) -> Path:
    """A tiny ``bfcnn_denoise.json`` denoiser trained for two steps: what plug-and-play configs
    load (their checkpoint key is pointed at it)."""
    root = tmp_path_factory.mktemp("denoiser")
    args = ["fit", "--config", str(CONFIGS[0].parent / "bfcnn_denoise.json"),
            *tiny.overrides("trainer", tiny.TRAINER), f"--trainer.logger.init_args.save_dir={root}",
            *TINY["bfcnn_denoise"]]  # fmt: skip
    assert main(args) == 0
    (checkpoint,) = root.glob("*/version_0/checkpoints/last.ckpt")
    return checkpoint


def trained_denoiser_keys(config: object, path: str = "-") -> list[str]:
    """The command-line keys (``--model.init_args...checkpoint``) of every
    ``TrainedDenoiser``'s checkpoint in a config."""
    keys = []
    if isinstance(config, dict):
        if str(config.get("class_path", "")).endswith("TrainedDenoiser"):
            keys.append(f"{path}.init_args.checkpoint")
        for key, value in config.items():
            keys += trained_denoiser_keys(value, f"{path}{'-' if path == '-' else '.'}{key}")
    return keys


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_config_fits_two_steps(config, tmp_path, capsys, fastmri_root, monkeypatch, request):
    name = json.loads(config.read_text())["trainer"]["logger"]["init_args"]["name"]
    args = [
        "fit",
        "--config",
        str(config),
        *tiny.overrides("trainer", tiny.TRAINER),
        f"--trainer.logger.init_args.save_dir={tmp_path}",
        *TINY[config.stem],
    ]
    if "FastMRIDataModule" in config.read_text():
        monkeypatch.setenv("DEEPINV_LAB_CACHE_DIR", str(tmp_path / "cache"))
        args.append(f"--data.init_args.root={fastmri_root}")
    for key in trained_denoiser_keys(json.loads(config.read_text())):
        args.append(f"{key}={request.getfixturevalue('denoiser_checkpoint')}")
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "val/ssim=" in out and re.search(r" val/\w+_ssim=", out)  # a baseline's
    assert (tmp_path / name / "version_0" / "checkpoints" / "last.ckpt").is_file()
    if "Interpolation" in config.read_text():  # super-resolution: LR | bicubic | SR | HR grids
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        events = EventAccumulator(str(tmp_path / name / "version_0")).Reload()
        prefix = (
            "val/lr_bicubic_sr_hr_mid_slices/" if "3d" in config.stem else "val/lr_bicubic_sr_hr/"
        )
        assert any(tag.startswith(prefix) for tag in events.Tags()["images"])


def test_fit_without_trainable_parameters_evaluates_the_baseline(tmp_path, capsys):
    """A classical Recon (CG-SENSE with a fixed lam) has nothing to train: fit runs without an
    optimizer and reports its validation metrics and CG diagnostics."""
    config = Path(__file__).parents[1] / "configs" / "cgsense.json"
    args = [
        "fit",
        "--config",
        str(config),
        *tiny.overrides("trainer", tiny.TRAINER),
        f"--trainer.logger.init_args.save_dir={tmp_path}",
        *TINY["cgsense"],
        f"{RECON}learn_damping=false",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "val/ssim=" in out and "val/cg/iterations=" in out and "val/cg/damping=0.01" in out
