"""Lightning DDP on CPU (gloo): two processes give exactly the metrics of one.

The validation set is sharded over the processes by the EpochSampler (padded with a repeated
item), and VolumeMetrics gathers per-slice records before evaluating each volume, so a volume
whose slices land on different processes is scored as in one process.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.fastmri_files import write_fastmri_volume


def fastmri_config(tiny_config: Path, root: Path, batch_size: int) -> Path:
    """The tiny VarNet config of ``tiny_config`` on the fastMRI files under ``root``."""
    config = json.loads(tiny_config.read_text())
    config["data"] = {
        "class_path": "deepinv_lab.data.fastmri_datamodule.FastMRIDataModule",
        "init_args": {
            "root": str(root),
            "batch_size": batch_size,
            "cache_dir": str(tiny_config.parent / "cache"),
            "mask_type": "equispaced_fraction",
        },
    }
    path = tiny_config.parent / f"ddp_b{batch_size}.json"
    path.write_text(json.dumps(config))
    return path


def run(command: str, config: Path, name: str, devices: int) -> Path:
    """Run ``deepinv-lab <command>`` on ``devices`` CPU processes; return its run directory."""
    args = [sys.executable, "-m", "deepinv_lab.cli", command, "--config", str(config)]
    args += ["--trainer.logger.init_args.name", name, "--trainer.accelerator", "cpu"]
    args += ["--trainer.devices", str(devices)]
    if devices > 1:
        args += ["--trainer.strategy", "ddp"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1])}
    result = subprocess.run(args, capture_output=True, text=True, env=env, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    return config.parent / "logs" / name / "version_0"


def run_test(config: Path, name: str, devices: int) -> dict:
    return json.loads((run("test", config, name, devices) / "test_metrics.json").read_text())


@pytest.mark.parametrize("batch_size", [1, 2])
def test_two_gloo_processes_give_the_metrics_of_one(tiny_config, tmp_path, batch_size):
    root = tmp_path / "data"
    # 3 volumes, 9 slices: odd, so the sampler pads; two matrix sizes, so batches are bucketed
    for number, (slices, width) in enumerate([(3, 24), (2, 28), (4, 24)]):
        for split in ("train", "val"):
            write_fastmri_volume(
                root / f"multicoil_{split}" / f"file{1000 + number}.h5",
                num_slices=slices, width=width, num_coils=2, seed=number,
            )  # fmt: skip
    config = fastmri_config(tiny_config, root, batch_size)
    one = run_test(config, "one", devices=1)
    two = run_test(config, "two", devices=2)
    assert [v["fname"] for v in one["volumes"]] == ["file1000.h5", "file1001.h5", "file1002.h5"]
    assert [v["slices"] for v in two["volumes"]] == [3, 2, 4]  # each slice counted once
    for a, b in zip(one["volumes"], two["volumes"], strict=True):
        for key in ("ssim", "psnr", "nmse", "baseline_ssim", "baseline_psnr"):
            assert b[key] == pytest.approx(a[key], rel=1e-6, abs=1e-9), key
    for key, value in one["mean"].items():
        if key.split("/")[1] in ("ssim", "psnr", "nmse", "baseline_ssim"):
            assert two["mean"][key] == pytest.approx(value, rel=1e-6), key


def test_predict_on_two_processes_writes_whole_volumes(tiny_config, tmp_path):
    root = tmp_path / "data"
    for number, slices in enumerate([3, 2]):
        for split in ("train", "val"):
            write_fastmri_volume(
                root / f"multicoil_{split}" / f"file{1000 + number}.h5",
                num_slices=slices, num_coils=2, seed=number,
            )  # fmt: skip
    config = fastmri_config(tiny_config, root, batch_size=1)
    one = run("predict", config, "one", devices=1) / "reconstructions"
    two = run("predict", config, "two", devices=2) / "reconstructions"
    names = sorted(p.name for p in one.glob("*.h5"))
    assert names == ["file1000.h5", "file1001.h5"] == sorted(p.name for p in two.glob("*.h5"))
    assert not list(two.glob(".part*"))  # the per-process parts are cleaned up
    for name in names:
        with h5py.File(one / name) as a, h5py.File(two / name) as b:
            assert a["reconstruction"].shape == (3 if name == "file1000.h5" else 2, 16, 16)
            np.testing.assert_allclose(b["reconstruction"][()], a["reconstruction"][()], rtol=1e-6)
