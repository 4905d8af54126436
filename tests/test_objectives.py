"""Training objectives: Supervised, SSDU and Distillation in the ReconModule, alone, combined,
after pruning and from a LightningCLI config; and SSDU trained from scratch."""

import json
import warnings
from pathlib import Path

import pytest
import torch

from deepinv_lab.cli import main
from deepinv_lab.errors import UserError
from deepinv_lab.pruning.structured import block_inputs, prunable_blocks, prune_blocks
from deepinv_lab.recons import VarNet, ZeroFilled
from deepinv_lab.systems.mri import FFT2
from deepinv_lab.training.module import ReconModule
from deepinv_lab.training.objectives import OBJECTIVES, SSDU, Distillation, Supervised
from tests import tiny

pytestmark = pytest.mark.usefixtures("isolated_rng")


@pytest.fixture(scope="module")
def batch(mri_batch):
    return mri_batch


RECONS = {"varnet": tiny.varnet, "deq": tiny.deq}


def save_recon(recon: torch.nn.Module, path: Path) -> str:
    torch.save({"state_dict": {f"recon.{k}": v for k, v in recon.state_dict().items()}}, path)
    return str(path)


def objectives(weights: dict[str, float], teacher: str | None = None, **ssdu) -> list:
    made = []
    for name, weight in weights.items():
        if name == "distillation":
            made.append(Distillation(teacher, weight=weight))
        elif name == "ssdu":
            made.append(SSDU(weight=weight, **ssdu))
        else:
            made.append(OBJECTIVES[name](weight=weight))
    return made


# --- ReconModule with objectives ---------------------------------------------------------------


class LogRecorder:
    def __init__(self):
        self.logged: dict[str, float] = {}

    def __call__(self, name, value, **kwargs):
        self.logged[name] = float(value.detach() if torch.is_tensor(value) else value)

    def losses(self) -> set[str]:
        return {k for k in self.logged if k.removeprefix("train/") in (*OBJECTIVES, "loss")}


def make_module(recon, weights=None, teacher=None, **kwargs) -> ReconModule:
    made = None if weights is None else objectives(weights, teacher)
    module = ReconModule(recon, loss="l1", objectives=made, **kwargs)
    module.log = LogRecorder()
    return module


def own_loss(module: ReconModule, batch: dict) -> float:
    """The training loss on a fixed split (same seed before and after training)."""
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(123)
        module.training_step(batch, 0)  # None under no_grad: nothing to train
    return module.log.logged["train/loss"]


@pytest.mark.parametrize("recon_name", sorted(RECONS))
@pytest.mark.parametrize("strategy", ["supervised", "ssdu", "distillation"])
def test_each_strategy_alone_lowers_its_loss(batch, tmp_path, recon_name, strategy):
    torch.manual_seed(1)
    teacher = None
    if strategy == "distillation":
        teacher = save_recon(RECONS[recon_name](), tmp_path / "teacher.ckpt")
    torch.manual_seed(0)
    module = make_module(RECONS[recon_name](), {strategy: 1.0}, teacher)
    module.setup("fit")
    if teacher is not None:  # another initialisation: the student starts away from it
        with torch.no_grad():
            y, system = batch["y"], batch["system"]
            teacher_recon = module.objectives[0].teacher_recon
            assert not torch.allclose(module.recon(y, system), teacher_recon(y, system))
    optimizer = torch.optim.Adam(module.recon.parameters(), lr=3e-3)
    before = own_loss(module, batch)
    for _ in range(12):
        optimizer.zero_grad()
        module.training_step(batch, 0).backward()
        optimizer.step()
    after = own_loss(module, batch)
    assert module.log.losses() == {f"train/{strategy}", "train/loss"}
    assert after < 0.9 * before, (before, after)


def test_combined_strategies_log_each_part_and_keep_the_teacher_out(batch, tmp_path):
    torch.manual_seed(1)
    teacher = save_recon(tiny.deq(), tmp_path / "teacher.ckpt")
    torch.manual_seed(0)
    weights = {"supervised": 1.0, "ssdu": 0.5, "distillation": 2.0}
    module = make_module(tiny.deq(), weights, teacher)
    module.setup("fit")
    loss = module.training_step(batch, 0)
    logged = module.log.logged
    assert (
        set(logged) == module.log.losses() == {f"train/{name}" for name in weights} | {"train/loss"}
    )
    total = sum(w * logged[f"train/{name}"] for name, w in weights.items())
    assert float(loss.detach()) == pytest.approx(total) == pytest.approx(logged["train/loss"])

    teacher_recon = module.objectives[2].teacher_recon
    assert not teacher_recon.training
    assert not any(p.requires_grad for p in teacher_recon.parameters())
    assert all(k.startswith(("recon.", "metrics.")) for k in module.state_dict())
    optimized = module.configure_optimizers().param_groups[0]["params"]
    assert sum(p.numel() for p in optimized) == sum(p.numel() for p in module.recon.parameters())
    loss.backward()
    assert all(p.grad is None for p in teacher_recon.parameters())


def test_the_teacher_keeps_its_architecture_when_the_student_is_pruned(batch, tmp_path):
    torch.manual_seed(0)
    y, system = batch["y"], batch["system"]
    pruned = ReconModule(recon=tiny.varnet())
    blocks = prunable_blocks(pruned.recon)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inputs = block_inputs(pruned.recon, blocks, lambda: pruned.recon(y, system))
        prune_blocks(blocks, inputs, 0.5)
    checkpoint = {"state_dict": pruned.state_dict()}
    pruned.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, tmp_path / "pruned.ckpt")
    teacher = tiny.varnet()
    module = make_module(
        tiny.varnet(),
        {"distillation": 1.0},
        save_recon(teacher, tmp_path / "teacher.ckpt"),
        init_from=str(tmp_path / "pruned.ckpt"),
    )
    module.setup("fit")
    teacher_recon = module.objectives[0].teacher_recon

    def count(recon):
        return sum(p.numel() for p in recon.parameters())

    assert count(module.recon) == count(pruned.recon) < count(teacher_recon)
    assert count(teacher_recon) == count(teacher)
    with torch.no_grad():
        torch.testing.assert_close(teacher_recon(y, system), teacher(y, system))
    module.training_step(batch, 0).backward()


@pytest.mark.parametrize("holdout", [0, 1, 1.5, -0.1])
def test_bad_holdout(holdout):
    with pytest.raises(UserError, match=r"SSDU: holdout must be in \(0, 1\)"):
        SSDU(holdout=holdout)


def test_bad_objectives_and_batches(batch):
    with pytest.raises(UserError, match="weight must be >= 0"):
        Supervised(weight=-1.0)
    with pytest.raises(UserError, match="splits must be >= 1"):
        SSDU(splits=0)
    with pytest.raises(UserError, match="selection must be 'uniform' or 'gaussian'"):
        SSDU(selection="normal")
    with pytest.raises(UserError, match="supervised given more than once"):
        ReconModule(tiny.deq(), objectives=[Supervised(), Supervised(weight=2.0)])
    with pytest.raises(UserError, match="at least one weight must be > 0"):
        ReconModule(tiny.deq(), objectives=[Supervised(weight=0.0)])

    module = make_module(tiny.varnet(), {"ssdu": 1.0})
    with pytest.raises(UserError, match="sampling mask; FFT2 has none"):
        module.training_step({"y": batch["y"], "system": FFT2()}, 0)
    no_target = {k: v for k, v in batch.items() if k != "target"}
    module.training_step(no_target, 0)  # SSDU needs no ground truth
    with pytest.raises(UserError, match="no 'target', which the supervised objective needs"):
        make_module(tiny.varnet(), {"supervised": 1.0}).training_step(no_target, 0)
    with pytest.raises(UserError, match="no 'target'"):
        make_module(tiny.varnet()).training_step(no_target, 0)
    with pytest.raises(UserError, match="ZeroFilled does not provide measurement_estimate"):
        make_module(ZeroFilled(), {"ssdu": 1.0}).training_step(batch, 0)


def test_objectives_from_a_lightning_cli_config(tiny_config, tmp_path):
    config = json.loads(tiny_config.read_text())
    recon_args = config["model"]["init_args"]["recon"]["init_args"]
    teacher = save_recon(VarNet(**recon_args), tmp_path / "teacher.ckpt")
    terms = [
        {"class_path": "deepinv_lab.training.objectives.Supervised"},
        {"class_path": "deepinv_lab.training.objectives.SSDU",
         "init_args": {"weight": 0.5, "holdout": 0.3, "selection": "gaussian"}},
        {"class_path": "deepinv_lab.training.objectives.Distillation",
         "init_args": {"teacher": teacher, "weight": 0.5}},
    ]  # fmt: skip
    config["model"]["init_args"]["objectives"] = terms
    config["trainer"]["logger"]["init_args"]["name"] = "finetune"
    path = tmp_path / "finetune.json"
    path.write_text(json.dumps(config))
    args = ["--trainer.max_steps", "2", "--trainer.limit_val_batches", "1"]
    assert main(["fit", "--config", str(path), *args]) == 0

    run_dir = tmp_path / "logs" / "finetune" / "version_0"
    last = run_dir / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, map_location="cpu", weights_only=False)
    hparams = checkpoint["hyper_parameters"]
    stored = hparams["objectives"]
    assert [o["class_path"].rsplit(".", 1)[1] for o in stored] == [
        "Supervised", "SSDU", "Distillation"
    ]  # fmt: skip
    assert stored[1]["init_args"]["holdout"] == 0.3 and stored[2]["init_args"]["teacher"] == teacher
    assert hparams["recon"]["class_path"].endswith("VarNet")  # the config, class paths included
    assert all(k.startswith(("recon.", "baseline.", "metrics.")) for k in checkpoint["state_dict"])
    module = ReconModule.load_from_checkpoint(last)
    assert [(o.name, o.weight) for o in module.objectives] == [
        ("supervised", 1.0), ("ssdu", 0.5), ("distillation", 0.5)
    ]  # fmt: skip
    assert module.objectives[1].holdout == 0.3 and module.objectives[1].selection == "gaussian"

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars = set(EventAccumulator(str(run_dir)).Reload().Tags()["scalars"])
    assert {"train/loss", "train/supervised", "train/ssdu", "train/distillation"} <= scalars


class HalfOfWhatItSees(ZeroFilled):
    """Predicts half the measurements it is given and nothing elsewhere: SSDU's normalised loss
    is then 2 on Lambda (nothing predicted) and 1 on Theta (half of each value), exactly."""

    def measurement_estimate(self, y, system, observe=None):
        return 0.5 * y


@pytest.mark.parametrize("granularity", ["points", "columns"])
@pytest.mark.parametrize("theta_weight", [0.0, 2.0])
def test_ssdu_theta_weight_adds_the_loss_on_what_the_recon_saw(batch, granularity, theta_weight):
    module = ReconModule(HalfOfWhatItSees())
    objective = SSDU(granularity=granularity, theta_weight=theta_weight, splits=2)
    value = objective(module, batch, None)
    torch.testing.assert_close(value, torch.tensor(2.0 + theta_weight), rtol=1e-5, atol=1e-6)
