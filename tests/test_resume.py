"""Interruptions: a training run killed mid-epoch and resumed with ``--ckpt_path last`` ends with
exactly the weights of an uninterrupted run (deterministic mode, CPU), and TensorBoard shows each
step once; Ctrl-C says how to resume."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).parents[1]


def fit_command(config: Path, name: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "deepinv_lab.cli", "fit", "--config", str(config),
        "--trainer.logger.init_args.name", name,
        "--trainer.max_epochs", "2", "--trainer.limit_train_batches", "1.0",
        "--trainer.limit_val_batches", "1", "--trainer.deterministic", "true",
        "--data.init_args.train_size", "5", "--checkpoint_every_n_steps", "2",
        *extra,
    ]  # fmt: skip


def environment() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def global_step(path: Path) -> int | None:
    try:
        return torch.load(path, weights_only=False, map_location="cpu")["global_step"]
    except Exception:  # noqa: BLE001 - not there yet, or being written
        return None


def slow_run(config: Path, name: str, stderr, *extra: str) -> subprocess.Popen:
    """The fit of ``fit_command``, slowed down (0.4 s a step) so that a test can stop it."""
    slow = ["--trainer.callbacks+=tests.slow_steps.SlowSteps", "--trainer.callbacks.seconds=0.4"]
    return subprocess.Popen(fit_command(config, name, *slow, *extra), env=environment(),
                            stdout=subprocess.DEVNULL, stderr=stderr, text=True)  # fmt: skip


def signal_after(process: subprocess.Popen, checkpoint: Path, step: int, signum: int) -> None:
    """Send ``signum`` to ``process`` once ``checkpoint`` holds ``step`` (or a later one)."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if (global_step(checkpoint) or 0) >= step:
            process.send_signal(signum)
            return
        time.sleep(0.05)


def test_killed_run_resumes_to_the_same_weights(tiny_config, tmp_path):
    env = environment()
    logs = tmp_path / "logs"
    # 1. uninterrupted: 2 epochs of 5 steps
    done = subprocess.run(fit_command(tiny_config, "whole"), env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    whole = torch.load(logs / "whole/version_0/checkpoints/last.ckpt", weights_only=False)
    assert whole["global_step"] == 10

    # 2. the same run, slowed down and killed (SIGKILL) after the step-6 checkpoint: mid-epoch 2
    process = slow_run(tiny_config, "killed", stderr=subprocess.DEVNULL)
    step_checkpoint = logs / "killed/version_0/checkpoints/last.ckpt"
    signal_after(process, step_checkpoint, 6, signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL, "the run ended before it was killed"
    assert global_step(step_checkpoint) == 6  # 1 of 5 batches into the second epoch

    # 3. resume: the newest last checkpoint, the same run directory
    resumed = subprocess.run(fit_command(tiny_config, "killed", "--ckpt_path", "last"), env=env,
                             capture_output=True, text=True, timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert not (logs / "killed/version_1").exists()
    final = torch.load(logs / "killed/version_0/checkpoints/last.ckpt", weights_only=False)
    assert final["global_step"] == 10
    assert final["state_dict"].keys() == whole["state_dict"].keys()
    for name, value in whole["state_dict"].items():
        assert torch.equal(final["state_dict"][name], value), name
    adam, adam_whole = final["optimizer_states"][0]["state"], whole["optimizer_states"][0]["state"]
    for index, state in adam_whole.items():
        assert torch.equal(adam[index]["exp_avg_sq"], state["exp_avg_sq"])

    # 4. the curves: every step once (the killed run's steps after step 6 are purged), the same
    # values as the uninterrupted run's
    curves = {
        name: scalars(logs / f"{name}/version_0", "train/loss") for name in ("whole", "killed")
    }
    steps = [step for step, _ in curves["killed"]]
    assert steps == sorted(set(steps)) and steps == [step for step, _ in curves["whole"]]
    assert [value for _, value in curves["killed"]] == [value for _, value in curves["whole"]]
    assert len(scalars(logs / "killed/version_0", "val/ssim")) == 2


def scalars(run: Path, tag: str) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run)).Reload()
    return [(event.step, event.value) for event in events.Scalars(tag)]


def test_ctrl_c_says_how_to_resume(tiny_config, tmp_path):
    # The run sends itself the SIGINT after step 2: a sender polling the checkpoint from outside
    # could miss the whole run on a loaded machine.
    process = slow_run(
        tiny_config, "stopped", subprocess.PIPE, "--trainer.callbacks.interrupt_at=2"
    )
    checkpoint = tmp_path / "logs/stopped/version_0/checkpoints/last.ckpt"
    _, err = process.communicate(timeout=300)
    assert process.returncode == 1, err[-2000:]
    hint = err.split("To resume: ")[-1].splitlines()[0]
    assert hint.startswith("deepinv-lab fit --config")
    assert hint.endswith("--ckpt_path last --trainer.logger.init_args.version 0")
    assert f"{checkpoint} holds step 2" in err
