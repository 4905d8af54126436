"""``deepinv-lab grid``, ``collect`` and ``scaling`` end to end on a tiny denoising config: runs,
per-GPU jobs, failures recorded, skip-completed, ``--index``, resuming interrupted runs, bad grids
rejected before any run, dry runs, SLURM scripts, and the example grids of configs/scaling."""

import json
from pathlib import Path

import pytest

from deepinv_lab.cli import main
from deepinv_lab.grid.collect import collect

REPO = Path(__file__).parents[1]
SIZE = "data.init_args.train_size"
BATCH = "data.init_args.batch_size"
CHANS = "model.init_args.recon.init_args.model.init_args.chans"
TINY = {
    "seed_everything": 0,
    "trainer": {
        "max_steps": 2,
        "accelerator": "cpu",
        "devices": 1,
        "log_every_n_steps": 1,
        "enable_progress_bar": False,
        "callbacks": [
            {
                "class_path": "pytorch_lightning.callbacks.ModelCheckpoint",
                "init_args": {"monitor": "val/psnr", "mode": "max", "filename": "best-{step}"},
            }
        ],
    },
    "model": {
        "class_path": "deepinv_lab.training.module.ReconModule",
        "init_args": {
            "recon": {
                "class_path": "deepinv_lab.recons.Denoiser",
                "init_args": {
                    "model": {
                        "class_path": "deepinv_lab.models.BiasFreeDnCNN",
                        "init_args": {"in_chans": 1, "num_layers": 2, "chans": 4},
                    }
                },
            },
            "loss": "mse",
        },
    },
    "data": {
        "class_path": "deepinv_lab.data.presets.BuiltinDenoisingDataModule",
        "init_args": {"batch_size": 2, "patch_size": 16, "sigma": 0.1, "val_patches_per_image": 1},
    },
}


def write(path: Path, content) -> Path:
    path.write_text(json.dumps(content))
    return path


@pytest.fixture
def base(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # the runs are processes of their own
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return write(tmp_path / "base.json", TINY)


def status(out: Path, name: str) -> dict:
    return json.loads((out / name / "status.json").read_text())


def test_grid_runs_records_failures_skips_completed_and_resumes(base, tmp_path, capsys):
    # batch size 0 passes the parser (an int) but the DataModule refuses it: those runs fail
    grid = write(tmp_path / "grid.json", {SIZE: [4, 8], BATCH: [2, 0]})
    out = tmp_path / "out"
    args = ["grid", "--config", str(base), "--grid", str(grid), "--out", str(out)]
    assert main([*args, "--gpus", "0,1"]) == 1  # one run per "GPU", two at a time
    printed = capsys.readouterr().out
    assert "2 of 4 runs completed, 2 failed" in printed

    names = ["E001_t4_b2", "E002_t4_b0", "E003_t8_b2", "E004_t8_b0"]
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == names
    first = status(out, names[0])
    assert first["status"] == "completed" and first["stages_done"] == ["fit", "test"]
    assert {status(out, n)["gpu"] for n in names} <= {"0", "1"}
    assert "best-step=" in first["tested_checkpoint"]  # test evaluates the monitored best
    failed = status(out, names[1])
    assert failed["status"] == "failed" and failed["stage"] == "fit"
    assert "batch_size must be >= 1" in failed["error"]
    saved = json.loads((out / names[0] / "config.json").read_text())
    assert saved["data"]["init_args"]["train_size"] == 4  # the full resolved config
    assert saved["data"]["init_args"]["patch_size"] == 16 and saved["trainer"]["max_steps"] == 2
    logger = saved["trainer"]["logger"]["init_args"]
    assert (logger["save_dir"], logger["version"]) == (str(out), names[0])

    # collect: one row per run, hyperparameters, metrics, failures with their reason
    assert main(["collect", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "4 runs (2 completed, 2 failed)" in printed
    results = collect(out)
    rows = {row["name"]: row for row in results.rows}
    assert results.varied == [SIZE, BATCH]
    assert rows[names[0]][SIZE] == 4 and rows[names[0]]["status"] == "completed"
    for metric in ("val/psnr_best", "val/psnr_final", "test/psnr", "test/ssim", "fit_s"):
        assert isinstance(rows[names[0]][metric], float), metric
    assert rows[names[0]]["val/psnr_best"] >= rows[names[0]]["val/psnr_final"]
    assert "batch_size must be >= 1" in rows[names[1]]["error"]
    assert (out / "results.csv").read_text().splitlines()[0].startswith("number,name,status,")

    # scaling: one curve per batch size; the failed ones have no rows
    assert main(["scaling", str(out), "--metric", "test/psnr"]) == 0
    printed = capsys.readouterr().out
    assert "batch_size=2" in printed and "alpha" in printed
    assert (out / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # run again, point 1 only: completed, so skipped without starting a process
    assert main([*args, "--index", "1"]) == 0
    assert "E001_t4_b2: completed earlier, skipped" in capsys.readouterr().out

    # interrupted runs: one during test (its fit is kept), one during fit (resumes from last)
    for name, done in ((names[0], ["fit"]), (names[2], [])):
        dead = {"status": "running", "pid": 2**22 + 1, "stages_done": done}  # no such process
        (out / name / "status.json").write_text(json.dumps({**status(out, name), **dead}))
    assert {row["name"]: row["status"] for row in collect(out).rows}[names[2]] == "interrupted"
    fit_log = (out / names[0] / "fit.log").read_text()
    assert main([*args, "--index", "1"]) == 0
    assert (out / names[0] / "fit.log").read_text() == fit_log  # the fit did not run again
    assert status(out, names[0])["status"] == "completed"
    assert main([*args, "--index", "3"]) == 0
    last_attempt = (out / names[2] / "fit.log").read_text().split("\n=== ")[-1]
    assert "--ckpt_path" in last_attempt.splitlines()[0] and "last" in last_attempt.splitlines()[0]
    assert status(out, names[2])["stages_done"] == ["fit", "test"]


@pytest.mark.parametrize(
    "grid, message",
    [
        ({"data.init_args.trainsize": [4]}, "did you mean 'data.init_args.train_size'"),
        ({SIZE: []}, "the list of values is empty"),
        ({CHANS: ["many"]}, f"grid key '{CHANS}': value \"many\" does not fit"),
        ({"trainer.logger": [None]}, "the grid sets the logger of every run"),
        ({"fixed": {"trainer.max_step": 3}, SIZE: [4]}, "'trainer.max_step' is not in the config"),
    ],
)
def test_bad_grids_are_rejected_before_any_run(base, tmp_path, capsys, grid, message):
    grid_file = write(tmp_path / "grid.json", grid)
    out = tmp_path / "out"
    assert main(["grid", "--config", str(base), "--grid", str(grid_file), "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_shared_checkpoint_directory_is_rejected(tmp_path, capsys):
    config = json.loads(json.dumps(TINY))
    config["trainer"]["callbacks"][0]["init_args"]["dirpath"] = str(tmp_path / "ckpts")
    base = write(tmp_path / "base.json", config)
    grid = write(tmp_path / "grid.json", {SIZE: [4, 8]})
    assert main(["grid", "--config", str(base), "--grid", str(grid), "--dry-run"]) == 2
    assert "every run of the grid would write its checkpoints there" in capsys.readouterr().err


def test_dry_run_and_slurm_script_start_no_run(base, tmp_path, capsys):
    grid = write(tmp_path / "grid.json", {SIZE: [4, 8], CHANS: [2, 4], "sample": {"n": 3}})
    out = tmp_path / "out"
    args = ["grid", "--config", str(base), "--grid", str(grid), "--out", str(out)]
    assert main([*args, "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("[pending]") == 3 and not out.exists()
    assert main([*args, "--slurm", "--slurm-option=--partition=gpu", "--no-test"]) == 0
    script = (out / "grid.sbatch").read_text()
    numbers = [p["number"] for p in json.loads((out / "grid.json").read_text())["points"]]
    assert len(numbers) == 3
    (array,) = [line for line in script.splitlines() if line.startswith("#SBATCH --array=")]
    tasks = set()
    for part in array.removeprefix("#SBATCH --array=").split(","):  # "1-3,5": 1, 2, 3, 5
        first, _, last = part.partition("-")
        tasks.update(range(int(first), int(last or first) + 1))
    assert tasks == set(numbers)  # one array task per sampled point
    assert "#SBATCH --partition=gpu" in script and "--no-test" in script
    assert str(base.resolve()) in script and (out / "slurm").is_dir()
    assert not [p for p in out.iterdir() if p.name.startswith("E")]  # nothing ran


def test_scaling_needs_two_sizes_and_collect_needs_runs(tmp_path, capsys):
    out = tmp_path / "grid"
    assert main(["collect", str(out)]) == 2
    assert "grid directory not found" in capsys.readouterr().err
    run = out / "E001_t4"
    run.mkdir(parents=True)
    (run / "status.json").write_text(
        json.dumps({"number": 1, "name": "E001_t4", "status": "completed", "overrides": {SIZE: 4}})
    )
    (run / "test_metrics.json").write_text(json.dumps({"mean": {"test/psnr": 20.0}}))
    assert main(["scaling", str(out)]) == 2
    assert "a power law needs at least 2 training-set sizes; found [4]" in capsys.readouterr().err


@pytest.mark.parametrize("grid", sorted(REPO.joinpath("configs", "scaling").glob("*.grid.json")))
def test_example_grids_resolve(grid, capsys):
    base = grid.with_name(grid.name.replace(".grid.json", ".json"))
    assert main(["grid", "--config", str(base), "--grid", str(grid), "--dry-run"]) == 0
    assert "[pending]" in capsys.readouterr().out


def test_an_unfinished_run_of_another_config_is_not_resumed(tmp_path, capsys):
    from deepinv_lab.grid.commands import check_existing_run
    from deepinv_lab.grid.rundir import RunDirectory
    from deepinv_lab.grid.spec import Point

    run = RunDirectory(tmp_path, "E001_t4")
    config = {"trainer": {"max_steps": 2, "logger": "a"}, "data": {"x": 1}}
    run.start(Point(1, "E001_t4", {SIZE: 4}), config)
    check_existing_run(run, {**config, "trainer": {"max_steps": 2, "logger": "b"}})  # same run
    with pytest.raises(ValueError, match="holds an unfinished run of a different config"):
        check_existing_run(run, {**config, "data": {"x": 2}})
    run.write_status(stages_done=["fit"])
    check_existing_run(run, {**config, "data": {"x": 2}})  # fitted: kept, with a note
    assert "was trained with a different config" in capsys.readouterr().out
