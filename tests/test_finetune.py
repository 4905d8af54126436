"""Fine-tuning of (pruned) Recons: the SSDU mask split, the Systems rebuilt with another mask, the
SSDU loss, the Recons' measurement estimates, and FineTuneModule's three strategies (supervised,
measurement consistency, distillation), alone, combined and from a LightningCLI config."""

import json
import warnings
from pathlib import Path

import pytest
import torch

from deepinv_lab.cli import main
from deepinv_lab.errors import UserError
from deepinv_lab.functional import ifft2c, rss
from deepinv_lab.models import DnCNN
from deepinv_lab.models.sensitivity import acs_window
from deepinv_lab.pruning.finetune import (
    STRATEGIES,
    FineTuneModule,
    split_mask,
    ssdu_loss,
    with_mask,
)
from deepinv_lab.pruning.structured import block_inputs, prunable_blocks, prune_blocks
from deepinv_lab.recons import DEQ, MoDL, VarNet, ZeroFilled
from deepinv_lab.systems.masking import Inpainting
from deepinv_lab.systems.mri import (
    FFT2,
    KSpaceMask,
    MultiCoilFourier,
    MultiCoilMRI,
    SingleCoilMRI,
)
from deepinv_lab.training.module import ReconModule


@pytest.fixture(autouse=True)
def _global_rng_untouched():
    """The tests seed torch's global generator; later test files see it as if they had not run."""
    with torch.random.fork_rng():
        yield


@pytest.fixture(scope="module")
def batch(mri_batch):
    return mri_batch


def tiny_varnet() -> VarNet:
    return VarNet(num_cascades=2, chans=8, pools=2, sens_chans=4, sens_pools=1)


def tiny_deq() -> DEQ:
    denoiser = DnCNN(in_chans=2, depth=4, channels=16, batch_norm=False, residual=False)
    return DEQ(denoiser, max_iter=5, on_failure="ignore")


RECONS = {"varnet": tiny_varnet, "deq": tiny_deq}


def column_mask(batch: int = 4, width: int = 320, acs: int = 26, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    mask = (torch.rand(batch, 1, 1, width, generator=generator) < 0.25).float()
    start = (width - acs + 1) // 2
    mask[..., start : start + acs] = 1
    return mask


def save_recon(recon: torch.nn.Module, path: Path) -> str:
    torch.save({"state_dict": {f"recon.{k}": v for k, v in recon.state_dict().items()}}, path)
    return str(path)


# --- split_mask -----------------------------------------------------------------------------


def test_column_mask_split_is_disjoint_keeps_the_acs_and_holds_out_the_fraction():
    mask = column_mask()
    theta, lam = split_mask(mask, 0.4)
    assert theta.shape == lam.shape == mask.shape and theta.dtype == mask.dtype
    assert torch.equal(theta + lam, mask) and not (theta * lam).any()
    acs = acs_window(mask.shape[-1], mask)
    assert (theta[acs.expand_as(theta)] == 1).all()
    sampled = mask.flatten(1).sum(1)
    fraction = lam.flatten(1).sum(1) / sampled
    assert ((fraction - 0.4).abs() <= 0.5 / sampled).all()
    assert not torch.equal(lam[0], lam[1])  # every sample its own split ...
    same = column_mask().expand(4, -1, -1, -1).contiguous()  # ... even with one shared mask
    _, lam_same = split_mask(same, 0.4)
    assert len({tuple(row.flatten().tolist()) for row in lam_same}) == 4
    # reproducible with a generator, fresh without
    first = split_mask(mask, 0.4, torch.Generator().manual_seed(1))[1]
    assert torch.equal(first, split_mask(mask, 0.4, torch.Generator().manual_seed(1))[1])
    assert not torch.equal(first, split_mask(mask, 0.4)[1])


def test_the_given_acs_width_is_protected_too():
    mask = torch.zeros(1, 1, 1, 32)
    mask[..., 12:20] = 1  # an 8-column block, of which the mask alone shows all 8
    mask[..., 10] = 1
    theta, lam = split_mask(mask, 0.9, num_low_frequencies=8)
    assert (theta[..., 12:20] == 1).all() and lam[..., 10] == 1
    mask[..., 15] = 0  # the derived ACS shrinks to 0 ... the given width still protects 8
    theta, _ = split_mask(mask, 0.9, num_low_frequencies=8)
    assert torch.equal(theta[..., 12:20], mask[..., 12:20])
    # one mask shared by the batch, an ACS width per sample: a split per sample
    theta, lam = split_mask(mask, 0.9, num_low_frequencies=torch.tensor([8, 2]))
    assert theta.shape == (2, 1, 1, 32) and torch.equal(theta + lam, mask.expand(2, -1, -1, -1))
    assert torch.equal(theta[0, ..., 12:20], mask[0, ..., 12:20]) and lam[1, ..., 12] == 1


def test_2d_mask_split_protects_the_central_block():
    generator = torch.Generator().manual_seed(0)
    mask = (torch.rand(3, 1, 40, 36, generator=generator) < 0.3).float()
    mask[..., 18:22, 16:20] = 1
    theta, lam = split_mask(mask, 0.5)
    assert torch.equal(theta + lam, mask) and not (theta * lam).any()
    assert (theta[..., 18:22, 16:20] == 1).all()
    fraction = lam.flatten(1).sum(1) / mask.flatten(1).sum(1)
    assert torch.allclose(fraction, torch.full_like(fraction, 0.5), atol=0.01)
    theta, _ = split_mask(mask, 0.5, center_block=8)
    assert (theta[..., 16:24, 14:22] == mask[..., 16:24, 14:22]).all()


@pytest.mark.parametrize("holdout", [0, 1, 1.5, -0.1])
def test_bad_holdout(holdout):
    with pytest.raises(ValueError, match=r"holdout must be in \(0, 1\)"):
        split_mask(column_mask(), holdout)
    with pytest.raises(ValueError, match=r"holdout must be in \(0, 1\)"):
        FineTuneModule(tiny_deq(), holdout=holdout)


# --- with_mask, ssdu_loss ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", [MultiCoilMRI, MultiCoilFourier, SingleCoilMRI, KSpaceMask])
def test_with_mask_keeps_the_system_and_swaps_its_mask(kind):
    system, x = kind.example()
    if kind is SingleCoilMRI:
        x = torch.randn(2, 1, 8, 7, dtype=torch.complex64)
    new_mask = (torch.rand_like(system.mask) > 0.5).to(system.mask.dtype)
    rebuilt = with_mask(system, new_mask)
    assert type(rebuilt) is kind and torch.equal(rebuilt.mask, new_mask)
    unmasked = with_mask(system, torch.ones_like(system.mask))(x)
    torch.testing.assert_close(rebuilt(x), new_mask * unmasked)
    if kind is MultiCoilMRI:
        assert torch.equal(rebuilt.coil_maps, system.coil_maps)


def test_with_mask_names_a_system_without_a_mask():
    with pytest.raises(ValueError, match="sampling mask; FFT2 has none"):
        with_mask(FFT2(), torch.ones(1, 1, 1, 4))
    with pytest.raises(ValueError, match="cannot rebuild a Inpainting.*supported: MultiCoilMRI"):
        with_mask(Inpainting(torch.ones(1, 1, 4, 4)), torch.ones(1, 1, 4, 4))


def test_ssdu_loss_vanishes_iff_the_estimate_matches_on_lambda():
    generator = torch.Generator().manual_seed(0)
    y = torch.randn(2, 3, 8, 10, dtype=torch.complex64, generator=generator)
    lam = torch.zeros(2, 1, 1, 10)
    lam[..., ::3] = 1
    assert ssdu_loss(y.clone(), y, lam) == 0
    off_lambda = y + (1 - lam) * torch.randn(y.shape, dtype=y.dtype, generator=generator)
    assert ssdu_loss(off_lambda, y, lam) == 0
    on_lambda = y + 0.5 * lam * y
    # per sample: ||0.5 Lambda y|| / ||Lambda y|| in l2 and l1 alike
    torch.testing.assert_close(ssdu_loss(on_lambda, y, lam), torch.tensor(1.0))
    with pytest.raises(ValueError, match="differ in shape"):
        ssdu_loss(y[:1], y, lam)


# --- measurement_estimate -----------------------------------------------------------------------


def test_deq_and_modl_estimate_their_complex_solution_observed_by_the_system(batch):
    torch.manual_seed(0)
    y, system = batch["y"], batch["system"]
    modl = MoDL(DnCNN(in_chans=2, depth=3, channels=8, batch_norm=False), num_iterations=2)
    with torch.no_grad():
        for recon in (tiny_deq(), modl):
            solution = recon.solution(y, system)
            assert solution.is_complex() and solution.shape == (2, 1, *y.shape[-2:])
            assert torch.equal(recon(y, system), solution.abs())
            estimate = recon.measurement_estimate(y, system)
            assert torch.equal(estimate, system(solution))
            assert estimate.shape == y.shape and not (estimate * (1 - system.mask)).any()
            # observed through the fully sampled System: the unmasked prediction
            full = with_mask(system, torch.ones_like(system.mask))
            unmasked = recon.measurement_estimate(y, system, full)
            torch.testing.assert_close(unmasked * system.mask, estimate)
            assert (unmasked * (1 - system.mask)).abs().sum() > 0


def test_varnet_estimate_is_its_final_kspace(batch):
    torch.manual_seed(0)
    y, system = batch["y"], batch["system"]
    varnet = tiny_varnet()
    with torch.no_grad():
        kspace = varnet.kspace(y, system)
        assert torch.equal(varnet(y, system), rss(ifft2c(kspace), dim=1, keepdim=True))
        assert torch.equal(varnet.measurement_estimate(y, system), kspace * system.mask)
        theta, _ = split_mask(system.mask, 0.4)
        observed = varnet.measurement_estimate(y * theta, with_mask(system, theta), system)
        assert torch.equal(
            observed, varnet.kspace(y * theta, with_mask(system, theta)) * system.mask
        )


def test_a_recon_without_estimate_says_so(batch):
    with pytest.raises(UserError, match="ZeroFilled does not provide measurement_estimate"):
        ZeroFilled().measurement_estimate(batch["y"], batch["system"])


# --- FineTuneModule ---------------------------------------------------------------------------


class LogRecorder:
    def __init__(self):
        self.logged: dict[str, float] = {}

    def __call__(self, name, value, **kwargs):
        self.logged[name] = float(value.detach() if torch.is_tensor(value) else value)

    def losses(self) -> set[str]:
        return {k for k in self.logged if k.removeprefix("train/") in (*STRATEGIES, "loss")}


def make_module(recon, **kwargs) -> FineTuneModule:
    module = FineTuneModule(recon, loss="l1", **kwargs)
    module.log = LogRecorder()
    return module


def own_loss(module: FineTuneModule, batch: dict) -> float:
    """The training loss on a fixed split (same seed before and after training)."""
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(123)
        module.training_step(batch, 0)  # None under no_grad: nothing to train
    return module.log.logged["train/loss"]


@pytest.mark.parametrize("recon_name", sorted(RECONS))
@pytest.mark.parametrize("strategy", ["supervised", "measurement", "distillation"])
def test_each_strategy_alone_lowers_its_loss(batch, tmp_path, recon_name, strategy):
    torch.manual_seed(1)
    teacher = None
    if strategy == "distillation":
        teacher = save_recon(RECONS[recon_name](), tmp_path / "teacher.ckpt")
    torch.manual_seed(0)
    module = make_module(RECONS[recon_name](), strategies={strategy: 1.0}, teacher=teacher)
    module.setup("fit")
    if teacher is not None:  # another initialisation: the student starts away from it
        with torch.no_grad():
            y, system = batch["y"], batch["system"]
            assert not torch.allclose(module.recon(y, system), module.teacher_recon(y, system))
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
    teacher = save_recon(tiny_deq(), tmp_path / "teacher.ckpt")
    torch.manual_seed(0)
    weights = {"supervised": 1.0, "measurement": 0.5, "distillation": 2.0}
    module = make_module(tiny_deq(), strategies=weights, teacher=teacher)
    assert module.hparams["strategies"] == weights and module.hparams["teacher"] == teacher
    assert module.hparams["holdout"] == 0.4
    module.setup("fit")
    loss = module.training_step(batch, 0)
    logged = module.log.logged
    assert (
        set(logged) == module.log.losses() == {f"train/{name}" for name in weights} | {"train/loss"}
    )
    total = sum(w * logged[f"train/{name}"] for name, w in weights.items())
    assert float(loss.detach()) == pytest.approx(total) == pytest.approx(logged["train/loss"])

    teacher_recon = module.teacher_recon
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
    pruned = ReconModule(recon=tiny_varnet())
    blocks = prunable_blocks(pruned.recon)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inputs = block_inputs(pruned.recon, blocks, lambda: pruned.recon(y, system))
        prune_blocks(blocks, inputs, 0.5)
    checkpoint = {"state_dict": pruned.state_dict()}
    pruned.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, tmp_path / "pruned.ckpt")
    teacher = tiny_varnet()
    module = make_module(
        tiny_varnet(),
        init_from=str(tmp_path / "pruned.ckpt"),
        teacher=save_recon(teacher, tmp_path / "teacher.ckpt"),
        strategies={"distillation": 1.0},
    )
    module.setup("fit")

    def count(recon):
        return sum(p.numel() for p in recon.parameters())

    assert count(module.recon) == count(pruned.recon) < count(module.teacher_recon)
    assert count(module.teacher_recon) == count(teacher)
    with torch.no_grad():
        torch.testing.assert_close(module.teacher_recon(y, system), teacher(y, system))
    module.training_step(batch, 0).backward()


def test_bad_strategies_and_batches(batch):
    valid = "valid: supervised, measurement, distillation"
    with pytest.raises(ValueError, match=f"unknown fine-tuning strategy 'supervise'.*{valid}"):
        FineTuneModule(tiny_deq(), strategies={"supervise": 1.0})
    with pytest.raises(ValueError, match="'distillation' needs a teacher"):
        FineTuneModule(tiny_deq(), strategies={"distillation": 1.0})
    with pytest.raises(ValueError, match="weights must be >= 0"):
        FineTuneModule(tiny_deq(), strategies={"supervised": 1.0, "measurement": -1.0})
    with pytest.raises(ValueError, match="at least one weight must be > 0"):
        FineTuneModule(tiny_deq(), strategies={"supervised": 0.0})

    module = make_module(tiny_varnet(), strategies={"measurement": 1.0})
    with pytest.raises(ValueError, match="FFT2 has none"):
        module.training_step({"y": batch["y"], "system": FFT2()}, 0)
    no_target = {k: v for k, v in batch.items() if k != "target"}
    module.training_step(no_target, 0)  # measurement consistency needs no ground truth
    with pytest.raises(ValueError, match="no 'target'.*'supervised'"):
        make_module(tiny_varnet()).training_step(no_target, 0)
    with pytest.raises(UserError, match="ZeroFilled does not provide measurement_estimate"):
        make_module(ZeroFilled(), strategies={"measurement": 1.0}).training_step(batch, 0)


def test_fine_tuning_from_a_lightning_cli_config(tiny_config, tmp_path):
    config = json.loads(tiny_config.read_text())
    recon_args = config["model"]["init_args"]["recon"]["init_args"]
    teacher = save_recon(VarNet(**recon_args), tmp_path / "teacher.ckpt")
    strategies = {"supervised": 1.0, "measurement": 0.5, "distillation": 0.5}
    config["model"]["class_path"] = "deepinv_lab.pruning.finetune.FineTuneModule"
    config["model"]["init_args"].update(strategies=strategies, teacher=teacher, holdout=0.3)
    config["trainer"]["logger"]["init_args"]["name"] = "finetune"
    path = tmp_path / "finetune.json"
    path.write_text(json.dumps(config))
    args = ["--trainer.max_steps", "2", "--trainer.limit_val_batches", "1"]
    assert main(["fit", "--config", str(path), *args]) == 0

    run_dir = tmp_path / "logs" / "finetune" / "version_0"
    last = run_dir / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, map_location="cpu", weights_only=False)
    hparams = checkpoint["hyper_parameters"]
    assert hparams["strategies"] == strategies and hparams["teacher"] == teacher
    assert hparams["recon"]["class_path"].endswith("VarNet")  # the config, class paths included
    assert all(k.startswith(("recon.", "baseline.", "metrics.")) for k in checkpoint["state_dict"])
    module = FineTuneModule.load_from_checkpoint(last)
    assert module.strategy_weights == strategies and module.holdout == 0.3

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars = set(EventAccumulator(str(run_dir)).Reload().Tags()["scalars"])
    assert {"train/loss", "train/supervised", "train/measurement", "train/distillation"} <= scalars
