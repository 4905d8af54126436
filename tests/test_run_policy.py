"""What the command line does around checkpoints, runs and errors (docs/training.md): a
checkpoint rebuilds its run, never silently replaces a config, ``last`` resumes only the run
meant, bad input is one line, bugs keep their traceback, failures leave no run directory."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from deepinv_lab.cli import main
from deepinv_lab.recons import VarNet

ROOT = Path(__file__).parents[1]


class BrokenVarNet(VarNet):
    """A VarNet with a bug in its forward pass (for the error boundary's tests)."""

    def forward(self, y, system, num_low_frequencies=None):
        raise TypeError("an internal bug")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, make_tiny_config):
    """A tiny VarNet fitted for one epoch: its config, run directory and checkpoints."""
    root = tmp_path_factory.mktemp("trained")
    path = make_tiny_config(root)
    assert main(["fit", "--config", str(path)]) == 0
    run = root / "logs" / "varnet" / "version_0"
    (best,) = (run / "checkpoints").glob("best-*.ckpt")
    return {"config": path, "run": run, "last": run / "checkpoints" / "last.ckpt", "best": best}


def runs(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_dir())


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("deepinv-lab: error:") and "Traceback" not in err[0]
    return err[0]


def test_checkpoints_are_one_resume_file_and_weights_only_bests(trained):
    files = sorted(p.name for p in (trained["run"] / "checkpoints").iterdir())
    assert files == [trained["best"].name, "last.ckpt"]
    last = torch.load(trained["last"], weights_only=False, map_location="cpu")
    best = torch.load(trained["best"], weights_only=False, map_location="cpu")
    assert "optimizer_states" in last and "optimizer_states" not in best
    for checkpoint in (last, best):  # each carries its run's config
        assert (
            checkpoint["deepinv_lab_config"]["model"]["init_args"]["recon"]["init_args"]["chans"]
            == 4
        )


@pytest.mark.parametrize("stage", ["validate", "test", "predict"])
def test_ckpt_path_alone_rebuilds_the_run_and_writes_into_it(trained, stage, capsys):
    checkpoint = trained["best"] if stage == "predict" else trained["last"]
    assert main([stage, "--ckpt_path", str(checkpoint)]) == 0
    assert f"using the config stored in {checkpoint}" in capsys.readouterr().err
    out = trained["run"] / stage  # the checkpoint's run, not a new version_1
    assert out.is_dir() and not (trained["run"].parent / "version_1").exists()
    if stage == "test":
        table = json.loads((out / "test_metrics.json").read_text())
        assert table["checkpoint"] == str(checkpoint)
    if stage == "predict":
        assert list((out / "reconstructions").glob("*.h5"))


def test_a_short_relative_checkpoint_path_finds_its_run(trained, monkeypatch):
    monkeypatch.chdir(trained["run"] / "checkpoints")
    assert main(["validate", "--ckpt_path", "last.ckpt"]) == 0
    assert (trained["run"] / "validate").is_dir()


def test_a_checkpoint_of_another_recon_is_an_error_naming_both(trained, capsys, tmp_path):
    config = json.loads((ROOT / "configs/modl.json").read_text())
    config["trainer"]["logger"]["init_args"]["save_dir"] = str(tmp_path / "logs")
    path = tmp_path / "modl.json"
    path.write_text(json.dumps(config))
    assert main(["test", "--config", str(path), "--ckpt_path", str(trained["last"])]) == 2
    line = one_line(capsys)
    assert "holds a deepinv_lab.recons.varnet.VarNet" in line and "MoDL" in line
    assert not (tmp_path / "logs").exists()


def test_changed_architecture_is_an_error_naming_the_key(trained, capsys):
    before = runs(trained["run"])
    args = ["test", "--config", str(trained["config"]), "--ckpt_path", str(trained["last"])]
    assert main([*args, "--model.init_args.recon.init_args.chans", "6"]) == 2
    line = one_line(capsys)
    assert "does not fit" in line and "shape mismatch" in line
    assert "model.init_args.recon.init_args.chans: 6 (config) vs 4 (checkpoint)" in line
    assert runs(trained["run"]) == before  # no <run>/test left by the failure


def test_other_differences_are_printed_and_the_config_wins(trained, capsys):
    args = ["validate", "--config", str(trained["config"]), "--ckpt_path", str(trained["last"])]
    assert main([*args, "--model.init_args.loss", "mse"]) == 0
    err = capsys.readouterr().err
    assert "note: the config differs from the checkpoint's in model.init_args.loss" in err


def test_last_resumes_only_the_run_it_is_told(trained, tmp_path, capsys):
    logs = tmp_path / "logs"
    shutil.copytree(trained["run"].parent, logs / "varnet")
    shutil.copytree(logs / "varnet" / "version_0", logs / "varnet" / "version_1")
    args = [
        "fit",
        "--config",
        str(trained["config"]),
        f"--trainer.logger.init_args.save_dir={logs}",
    ]
    # two runs could be meant: an error listing them, nothing written
    assert main([*args, "--ckpt_path", "last"]) == 2
    line = one_line(capsys)
    assert "2 runs under" in line and "version_0" in line and "version_1" in line
    assert "--trainer.logger.init_args.version" in line
    # the run named by its version
    more = ["--ckpt_path", "last", "--trainer.logger.init_args.version", "0"]
    assert main([*args, "--trainer.max_epochs", "2", *more]) == 0
    assert "resuming" in capsys.readouterr().err
    resumed = torch.load(logs / "varnet/version_0/checkpoints/last.ckpt", weights_only=False)
    assert resumed["epoch"] == 1 and resumed["global_step"] == 4
    assert not (logs / "varnet" / "version_2").exists()
    # nothing to resume under another name: said, and a new run
    other = [*args, "--trainer.logger.init_args.name", "other", "--ckpt_path", "last"]
    assert main(other) == 0
    assert "nothing to resume in" in capsys.readouterr().err
    assert (logs / "other" / "version_0" / "checkpoints" / "last.ckpt").is_file()


def test_an_internal_error_keeps_its_traceback_and_leaves_no_run(trained, tmp_path):
    args = ["fit", "--config", str(trained["config"]),
            f"--trainer.logger.init_args.save_dir={tmp_path / 'logs'}",
            "--model.init_args.recon.class_path", "test_run_policy.BrokenVarNet"]  # fmt: skip
    with pytest.raises(TypeError, match="an internal bug"):
        main(args)
    assert not (tmp_path / "logs").exists()


def write_bad_files(tmp_path: Path, config: Path) -> dict[str, Path]:
    data = json.loads(config.read_text())
    files = {"notes": tmp_path / "notes.txt", "folder": tmp_path / "folder.ckpt"}
    files["notes"].write_text("my notes\n")
    files["folder"].mkdir()
    checkpoint = torch.load(config.parent / "logs/varnet/version_0/checkpoints/last.ckpt",
                            weights_only=False)  # fmt: skip
    files["truncated"] = tmp_path / "truncated.ckpt"
    torch.save(checkpoint, files["truncated"])
    content = files["truncated"].read_bytes()
    files["truncated"].write_bytes(content[: len(content) // 3])
    files["syntax"] = tmp_path / "syntax.json"
    files["syntax"].write_text(config.read_text().replace('"max_epochs": 1,', '"max_epochs": 1'))
    misspelt = json.loads(json.dumps(data))
    misspelt["trainer"]["max_epochz"] = misspelt["trainer"].pop("max_epochs")
    files["misspelt"] = tmp_path / "misspelt.json"
    files["misspelt"].write_text(json.dumps(misspelt, indent=1))
    return files


BAD_INPUTS = {
    "text file as checkpoint": (["--ckpt_path", "{notes}"], "notes.txt: not a readable checkpoint"),
    "truncated checkpoint": (["--ckpt_path", "{truncated}"], "looks truncated"),
    "folder as checkpoint": (["--ckpt_path", "{folder}"], "is a directory"),
    "missing checkpoint": (["--ckpt_path", "{notes}.nope"], "no such file"),
    "best outside fit": (["--ckpt_path", "best"], "--ckpt_path best: only a checkpoint file"),
    "type error": (["--data.init_args.accelerations", "4"], "expected a list of int"),
    "prefix of a key": (["--trainer.max_epoch", "1"], "did you mean --trainer.max_epochs"),
    "JSON syntax": (["--config", "{syntax}"], "syntax.json: not valid JSON"),
    "misspelt key in a file": (["--config", "{misspelt}"], "misspelt.json: trainer.max_epochz"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS), ids=list(BAD_INPUTS))
def test_bad_input_is_one_plain_line_and_writes_nothing(trained, tmp_path, capsys, case):
    files = write_bad_files(tmp_path, trained["config"])
    extra, needle = BAD_INPUTS[case]
    extra = [arg.format(**files) for arg in extra]
    stage = "fit" if "--config" in extra or case in ("type error", "prefix of a key") else "test"
    args = (
        [stage, *extra]
        if "--config" in extra
        else [stage, "--config", str(trained["config"]), *extra]
    )
    before = runs(trained["run"].parent)
    assert main(args) == 2
    line = one_line(capsys)
    assert needle in line, line
    assert runs(trained["run"].parent) == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_a_missing_accelerator_is_one_line(trained, capsys):
    args = ["fit", "--config", str(trained["config"]), "--trainer.accelerator", "gpu"]
    assert main(args) == 2
    assert "trainer: No supported gpu backend found" in one_line(capsys)


def test_no_advertisements_and_no_empty_flops_column(trained, tmp_path, capfd, caplog):
    args = ["fit", "--config", str(trained["config"]), "--trainer.enable_model_summary", "true",
            f"--trainer.logger.init_args.save_dir={tmp_path}"]  # fmt: skip
    assert main(args) == 0
    out, err = capfd.readouterr()
    printed = out + err + caplog.text  # Lightning logs to pytest's handler under pytest
    assert "Total params" in printed and "FLOPs" not in printed and "Flops" not in printed
    assert "💡" not in printed and "litlogger" not in printed and "litmodels" not in printed
