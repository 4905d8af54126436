"""``deepinv-lab prune`` end to end: a tiny VarNet, DEQ and RCAN trained for two steps, pruned,
reported, loaded back by ``test`` and ``fit``; fine-tuning through ``fit``; the sweep; bad
input."""

import csv
import hashlib
import json
import time
from pathlib import Path

import pytest
import torch

from deepinv_lab.cli import main
from deepinv_lab.pruning.options import PruneOptions
from deepinv_lab.pruning.structured import PruningError
from tests import tiny
from tests.test_configs import TINY

CONFIGS = Path(__file__).parents[1] / "configs"
QUICK = ["--prune.val_batches=1", "--prune.repeats=1", "--prune.warmup=0"]
#: the fit validates on the whole set (1.0), as prune does with prune.val_batches=null
TRAIN = tiny.overrides("trainer", {**tiny.TRAINER, "limit_val_batches": 1.0})


def trained(name: str, root: Path) -> Path:
    """The last checkpoint of configs/<name>.json trained for two steps with tiny overrides."""
    args = ["fit", "--config", str(CONFIGS / f"{name}.json"), *TINY[name], *TRAIN,
            f"--trainer.logger.init_args.save_dir={root}"]  # fmt: skip
    assert main(args) == 0
    (checkpoint,) = root.glob("*/version_0/checkpoints/last.ckpt")
    return checkpoint


@pytest.fixture(scope="module")
def varnet_checkpoint(tmp_path_factory) -> Path:
    return trained("varnet", tmp_path_factory.mktemp("varnet"))


def prune(name: str, checkpoint: Path, out: Path, *extra: str) -> int:
    args = ["prune", "--config", str(CONFIGS / f"{name}.json"), "--ckpt_path", str(checkpoint),
            f"--prune.out={out}", *QUICK, *TINY[name], *extra]  # fmt: skip
    return main(args)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rows(path: Path) -> list[dict]:
    with open(path) as file:
        return list(csv.DictReader(file))


@pytest.mark.parametrize("name", ["varnet", "deq", "rcan_sr"])
def test_prune_writes_a_smaller_checkpoint_that_test_loads(name, tmp_path, capsys):
    checkpoint = trained(name, tmp_path / "train")
    fitted_psnr = float(capsys.readouterr().out.rsplit("val/psnr=", 1)[1].split()[0])
    before = digest(checkpoint)
    # on the whole validation set (not QUICK's one batch), which test evaluates too
    whole = "--prune.val_batches=null"
    assert prune(name, checkpoint, tmp_path / "out", "--prune.ratio=0.5", whole) == 0
    assert digest(checkpoint) == before  # the input is only read
    pruned = tmp_path / "out" / "ratio_0.50" / "pruned.ckpt"
    table = rows(tmp_path / "out" / "report.csv")
    assert [r["stage"] for r in table] == ["unpruned", "pruned"]
    unpruned, small = table
    assert int(small["prior_params"]) < int(unpruned["prior_params"])
    assert float(small["gmacs"]) < float(unpruned["gmacs"])
    # the unpruned row measures the checkpoint as its fit left it (the fit prints 4 digits)
    assert float(unpruned["val_psnr"]) == pytest.approx(fitted_psnr, rel=1e-3)
    speedup = float(small["unpruned_cpu_ms"]) / float(small["latency_cpu_ms"])
    assert float(small["speedup_cpu"]) == pytest.approx(speedup)
    assert "ratio" in capsys.readouterr().out
    # the pruned architecture travels with the checkpoint: test loads it with the same config
    # and measures the PSNR that prune reported for the pruned model
    test = ["test", "--config", str(CONFIGS / f"{name}.json"), "--ckpt_path", str(pruned),
            *TINY[name], f"--trainer.logger.init_args.save_dir={tmp_path / 'test'}"]  # fmt: skip
    assert main(test) == 0
    (metrics,) = (tmp_path / "test").rglob("test_metrics.json")
    psnr = json.loads(metrics.read_text())["mean"]["test/psnr"]
    assert psnr == pytest.approx(float(small["val_psnr"]), rel=1e-5)
    printed = float(capsys.readouterr().out.split("test/psnr=")[1].split()[0])
    # and alone: the pruned checkpoint keeps the run config of the checkpoint it came from
    assert main(["test", "--ckpt_path", str(pruned)]) == 0
    assert float(capsys.readouterr().out.split("test/psnr=")[1].split()[0]) == printed


def test_a_sweep_reports_every_ratio_plots_and_resumes(varnet_checkpoint, tmp_path, capsys):
    out = tmp_path / "sweep"
    assert prune("varnet", varnet_checkpoint, out, "--prune.ratios=0.5,0.25") == 0
    table = rows(out / "report.csv")
    assert [(r["ratio"], r["stage"]) for r in table] == [
        ("0.0", "unpruned"),
        ("0.25", "pruned"),
        ("0.5", "pruned"),
    ]
    assert (out / "sweep.png").stat().st_size > 0
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert float(table[2]["gmacs"]) < float(table[1]["gmacs"]) < float(table[0]["gmacs"])
    # a second run reuses the finished ratios; other options in the same directory: refused
    stamp = (out / "ratio_0.50" / "pruned.ckpt").stat().st_mtime_ns
    capsys.readouterr()
    assert prune("varnet", varnet_checkpoint, out, "--prune.ratios=0.5,0.25") == 0
    assert "done before" in capsys.readouterr().out
    assert (out / "ratio_0.50" / "pruned.ckpt").stat().st_mtime_ns == stamp
    assert prune("varnet", varnet_checkpoint, out, "--prune.ratio=0.5", "--prune.scope=global") == 2
    assert "holds a run with other options" in capsys.readouterr().err


def test_a_pruned_checkpoint_is_fine_tuned_with_init_from_not_resumed(
    varnet_checkpoint, tmp_path, capsys
):
    assert prune("varnet", varnet_checkpoint, tmp_path / "out", "--prune.ratio=0.5") == 0
    pruned = tmp_path / "out" / "ratio_0.50" / "pruned.ckpt"
    fit = ["fit", "--config", str(CONFIGS / "varnet.json"), *TINY["varnet"], *TRAIN,
           f"--trainer.logger.init_args.save_dir={tmp_path / 'fit'}"]  # fmt: skip
    capsys.readouterr()
    assert main([*fit, "--ckpt_path", str(pruned)]) == 2
    assert "--model.init_args.init_from" in capsys.readouterr().err
    assert main([*fit, f"--model.init_args.init_from={pruned}"]) == 0
    (tuned,) = (tmp_path / "fit").glob("*/version_*/checkpoints/last.ckpt")
    state = torch.load(tuned, map_location="cpu", weights_only=False)
    assert "pruned_structure" in state  # still the pruned architecture
    source = torch.load(pruned, map_location="cpu", weights_only=False)["state_dict"]
    for key, value in source.items():
        assert state["state_dict"][key].shape == value.shape


def test_prune_fine_tunes_and_reports_the_three_stages(varnet_checkpoint, tmp_path):
    out = tmp_path / "out"
    args = ["--prune.ratio=0.5", "--prune.finetune=supervised,distillation",
            "--prune.finetune_steps=2", "--trainer.limit_val_batches=1"]  # fmt: skip
    assert prune("varnet", varnet_checkpoint, out, *args) == 0
    table = rows(out / "report.csv")
    assert [r["stage"] for r in table] == ["unpruned", "pruned", "finetuned"]
    config = json.loads((out / "ratio_0.50" / "finetune.json").read_text())
    init_args = config["model"]["init_args"]
    assert config["model"]["class_path"] == "deepinv_lab.training.module.ReconModule"
    assert init_args["objectives"] == [
        {"class_path": "deepinv_lab.training.objectives.Supervised", "init_args": {"weight": 1.0}},
        {
            "class_path": "deepinv_lab.training.objectives.Distillation",
            "init_args": {"weight": 1.0, "teacher": str(varnet_checkpoint.resolve())},
        },
    ]
    assert Path(table[2]["checkpoint"]).is_file()
    assert table[2]["params"] == table[1]["params"]


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--prune.ratio=1.5"], "prune.ratio must be in (0, 1), got 1.5"),
        (["--prune.ratio=0"], "prune.ratio must be in (0, 1), got 0.0"),
        ([], "give prune.ratio"),
        (["--prune.ratio=0.5", "--prune.importanc=l2"], "did you mean --prune.importance"),
        (["--prune.ratio=0.5", "--prune.importance=l3"], "prune.importance: expected one of"),
        (["--prune.ratio=many"], "prune.ratio: expected"),
        (["--prune.ratio=0.5", "--prune.finetune=teacher"], "unknown strategy 'teacher'"),
        (["--prune.ratio=0.5", "--model.init_args.recon.init_args.chans=6"], "does not fit VarNet"),
        (["--prune.ratio=0.5", "--trainer.no_such_key=2"], "no_such_key"),
    ],
)
def test_bad_input_is_one_clear_line(varnet_checkpoint, tmp_path, capsys, extra, needle):
    before = digest(varnet_checkpoint)
    assert prune("varnet", varnet_checkpoint, tmp_path / "out", *extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert digest(varnet_checkpoint) == before


def test_nothing_prunable_and_missing_files_are_named(varnet_checkpoint, tmp_path, capsys):
    cgsense = trained("cgsense", tmp_path / "cg")
    assert prune("cgsense", cgsense, tmp_path / "out", "--prune.ratio=0.5") == 2
    assert "nothing to prune in CGSense" in capsys.readouterr().err
    missing = tmp_path / "missing.ckpt"
    assert prune("varnet", missing, tmp_path / "out", "--prune.ratio=0.5") == 2
    assert f"--ckpt_path: {missing}: no such file" in capsys.readouterr().err
    inside = varnet_checkpoint.parent
    assert prune("varnet", varnet_checkpoint, inside, "--prune.ratio=0.5") == 2
    assert "lies inside the output directory" in capsys.readouterr().err


def test_options_from_the_config_section_and_the_command_line(tmp_path):
    """The prune group of the parser: a config's prune section, overridden by --prune.<key>."""
    from deepinv_lab.cli import config_parser
    from deepinv_lab.pruning.options import add_prune_arguments

    config = json.loads((CONFIGS / "varnet.json").read_text())
    config["prune"] = {"ratios": "0.3,0.1", "finetune": {"ssdu": 2}, "repeats": 3}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    parser = config_parser(add_prune_arguments)
    parsed = parser.parse_args(["fit", "--config", str(path), "--prune.include_sensitivity=true"])
    options = PruneOptions(**parsed.fit.prune.as_dict())
    assert options.sweep == [0.1, 0.3] and options.repeats == 3
    assert options.finetune == {"ssdu": 2.0} and options.include_sensitivity is True
    assert PruneOptions(ratio=0.5, finetune="none").finetune == {}
    assert PruneOptions(ratio=0.5, finetune="supervised,distillation").finetune == {
        "supervised": 1.0,
        "distillation": 1.0,
    }
    with pytest.raises(PruningError, match="not both"):
        PruneOptions(ratio=0.5, ratios=[0.1])
    with pytest.raises(PruningError, match="repeated"):
        PruneOptions(ratios=[0.1, 0.1])
    with pytest.raises(PruningError, match="prune.ratios: 'a,b' is not a list of numbers"):
        PruneOptions(ratios="a,b")


def test_macs_count_every_call_in_closed_form():
    from torch import nn

    from deepinv_lab.pruning.measure import count_macs, time_interleaved

    conv = nn.Conv2d(4, 6, 3, padding=1, groups=2)
    up = nn.ConvTranspose2d(6, 2, 2, stride=2)
    linear = nn.Linear(5, 3)
    x = torch.randn(1, 4, 8, 8)
    # conv: output 6*8*8 elements x (4/2) inputs x 3*3; twice (called twice)
    assert count_macs(conv, lambda: (conv(x), conv(x))) == 2 * 6 * 64 * 2 * 9
    # transposed: input 6*8*8 elements x 2 outputs x 2*2
    assert count_macs(up, lambda: up(torch.randn(1, 6, 8, 8))) == 6 * 64 * 2 * 4
    assert count_macs(linear, lambda: linear(torch.randn(7, 5))) == 7 * 3 * 5
    calls = {"a": 0, "b": 0}

    def run(name):
        calls[name] += 1

    def run_slowly(name):
        run(name)
        time.sleep(0.002)

    runs = {"a": lambda: run("a"), "b": lambda: run_slowly("b")}
    timed = time_interleaved(runs, torch.device("cpu"), 2, 3)
    assert calls == {"a": 5, "b": 5} and timed["a"].repeats == 3
    assert timed["b"].min_ms >= 2.0  # in milliseconds, each run timed on its own
    assert timed["a"].median_ms < timed["b"].median_ms
    for latency in timed.values():
        assert latency.min_ms <= latency.median_ms <= latency.max_ms


def test_prune_the_deq_of_the_fastmri_config_through_its_normalized_wrapper(tmp_path, monkeypatch):
    """The pruning study's DEQ on (written) fastMRI brain files: the prior inside Normalized is
    found, pruned and reported like a bare DEQ's."""
    from tests.fastmri_files import write_brain_volume

    monkeypatch.setenv("DEEPINV_LAB_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "data"
    write_brain_volume(root / "multicoil_train" / "file1.h5", [60, 75], (96, 96), (64, 64), 4)
    write_brain_volume(root / "multicoil_val" / "file2.h5", [95], (96, 96), (64, 64), 4)
    data = [*TINY["deq_fastmri"], f"--data.init_args.root={root}"]
    fit = ["fit", "--config", str(CONFIGS / "deq_fastmri.json"), *data, *TRAIN,
           f"--trainer.logger.init_args.save_dir={tmp_path / 'train'}"]  # fmt: skip
    assert main(fit) == 0
    (checkpoint,) = (tmp_path / "train").glob("*/version_0/checkpoints/last.ckpt")
    args = ["prune", "--config", str(CONFIGS / "deq_fastmri.json"), "--ckpt_path",
            str(checkpoint), f"--prune.out={tmp_path / 'out'}", *QUICK, *data,
            "--prune.ratio=0.5"]  # fmt: skip
    assert main(args) == 0
    unpruned, small = rows(tmp_path / "out" / "report.csv")
    assert int(small["prior_params"]) < int(unpruned["prior_params"])
