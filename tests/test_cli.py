"""The `deepinv-lab` command end to end, and its errors on bad input."""

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from deepinv_lab.cli import main

CONFIGS = sorted(Path(__file__).parents[1].joinpath("configs").glob("*.json"))


def test_top_level_help_is_instant_and_lists_commands():
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "deepinv_lab.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "fit" in result.stdout and "predict" in result.stdout
    assert "pytorch_lightning" not in result.stderr  # Lightning is not imported for --help


def test_fit_then_test_end_to_end(tiny_config, tmp_path, capsys):
    assert main(["fit", "--config", str(tiny_config)]) == 0
    out = capsys.readouterr().out
    assert "val metrics:" in out and "val/ssim=" in out and "val/baseline_ssim=" in out
    run_dir = tmp_path / "logs" / "varnet" / "version_0"
    assert list(run_dir.glob("events.out.tfevents.*")), "no TensorBoard events written"
    assert (run_dir / "config.yaml").is_file()
    last = run_dir / "checkpoints" / "last.ckpt"
    assert last.is_file()
    assert str(run_dir / "checkpoints") in out

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir)).Reload()
    assert {"train/loss", "val/ssim", "val/psnr", "val/nmse"} <= set(events.Tags()["scalars"])
    images = events.Tags()["images"]
    assert any(tag.startswith("val/target_baseline_recon_error") for tag in images)

    assert "_hparams_/experiment" in events.PluginTagToContent("hparams")  # the HParams tab
    final = events.Scalars("hp/val_ssim")[-1].value
    assert final == pytest.approx(events.Scalars("val/ssim")[-1].value)
    assert {"train/it_per_s", "lr-Adam"} <= set(events.Tags()["scalars"])

    assert main(["test", "--config", str(tiny_config), "--ckpt_path", str(last)]) == 0
    assert "test metrics:" in capsys.readouterr().out
    test_dir = run_dir / "test"  # the checkpoint's run, not a new version_1
    assert not (tmp_path / "logs" / "varnet" / "version_1").exists()
    table = json.loads((test_dir / "test_metrics.json").read_text())
    assert table["checkpoint"] == str(last)
    (volume,) = table["volumes"]  # the built-in validation set is one volume of 13 slices
    assert volume["fname"] == "mni152_t1_val" and volume["slices"] == 13
    assert table["mean"]["test/ssim"] == pytest.approx(volume["ssim"])
    assert (test_dir / "test_metrics.csv").read_text().startswith("volume_id,fname,ssim")

    assert main(["predict", "--config", str(tiny_config), "--ckpt_path", str(last)]) == 0
    written = capsys.readouterr().out.split("reconstructions: ")[-1].strip()
    assert Path(written) == run_dir / "predict" / "reconstructions"
    (volume_file,) = Path(written).glob("*.h5")  # fastMRI's submission format
    assert volume_file.name == "mni152_t1_val.h5"
    with h5py.File(volume_file) as file:
        assert list(file) == ["reconstruction"]
        assert file["reconstruction"].shape == (13, 56, 48)
        assert file["reconstruction"].dtype == np.float32

    # the checkpoint carries its config: it rebuilds the Recon without the JSON file
    from deepinv_lab.recons import VarNet
    from deepinv_lab.training.module import ReconModule

    module = ReconModule.load_from_checkpoint(last)
    assert isinstance(module.recon, VarNet) and len(module.recon.cascades) == 1


def test_fit_resumes_from_a_checkpoint(tiny_config, tmp_path):
    assert main(["fit", "--config", str(tiny_config)]) == 0
    last = tmp_path / "logs" / "varnet" / "version_0" / "checkpoints" / "last.ckpt"
    args = ["fit", "--config", str(tiny_config), "--trainer.max_epochs", "2"]
    assert main([*args, "--ckpt_path", str(last)]) == 0
    resumed = tmp_path / "logs" / "varnet" / "version_1" / "checkpoints" / "last.ckpt"
    assert torch.load(resumed, weights_only=False)["epoch"] == 1
    # --ckpt_path last resumes the run the logger's version names, logging into it
    resume = ["--ckpt_path", "last", "--trainer.logger.init_args.version", "1"]
    assert main(["fit", "--config", str(tiny_config), "--trainer.max_epochs", "3", *resume]) == 0
    assert torch.load(resumed, weights_only=False)["epoch"] == 2
    assert not (tmp_path / "logs" / "varnet" / "version_2").exists()


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_every_config_parses(config, capsys):
    assert main(["fit", "--config", str(config), "--print_config"]) == 0
    printed = capsys.readouterr().out
    assert "class_path" in printed and "recon" in printed


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--trainer.max_epochz", "3"], "max_epochz"),
        (["--trainer.max_epochs", "abc"], "trainer.max_epochs"),
        (["--model.init_args.recon.init_args.num_cascadez", "2"], "num_cascadez"),
        (["--data.init_args.accelerations", "[4, 8]"], "accelerations"),
        (["--model.init_args.loss", "ssimm"], "ssimm"),
    ],
)
def test_bad_input_gives_one_clear_line(tiny_config, capsys, args, needle):
    assert main(["fit", "--config", str(tiny_config), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("deepinv-lab: error:") and needle in err[0]
    assert "Traceback" not in err[0]


def test_missing_config_file_is_named(tmp_path, capsys):
    missing = tmp_path / "nope.json"
    assert main(["fit", "--config", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err


def test_unknown_key_in_config_file_is_named(tiny_config, capsys):
    config = json.loads(tiny_config.read_text())
    config["data"]["init_args"]["num_coilz"] = 4
    tiny_config.write_text(json.dumps(config))
    assert main(["fit", "--config", str(tiny_config)]) == 2
    assert "num_coilz" in capsys.readouterr().err


def test_unknown_command(capsys):
    assert main(["fitt"]) == 2
    assert "fitt" in capsys.readouterr().err
