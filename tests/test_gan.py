"""GANModule: the two phases, which network each step updates, detached fakes, generator
checkpoints, argument checks, clipping, schedulers and resume, on tiny models with a real
Trainer."""

import math
from functools import partial

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, default_collate

from deepinv_lab.errors import UserError
from deepinv_lab.models.srgan import SRGANDiscriminator, SRGANGenerator
from deepinv_lab.recons.image import Interpolation, SuperResolution
from deepinv_lab.systems.downsampling import Downsampling
from deepinv_lab.training.gan import GANModule
from deepinv_lab.training.module import ReconModule

SCALE = 2


class _Images(Dataset):
    """Smooth random HR images in [0, 1] and their x2 downsampled measurements."""

    def __init__(self, count: int = 4, size: int = 16):
        generator = torch.Generator().manual_seed(0)
        coarse = torch.rand(count, 1, size // 4, size // 4, generator=generator)
        self.target = nn.functional.interpolate(coarse, size=(size, size), mode="bilinear")
        self.y = Downsampling(SCALE)(self.target)

    def __len__(self) -> int:
        return len(self.target)

    def __getitem__(self, index: int) -> dict:
        return {
            "y": self.y[index],
            "target": self.target[index],
            "max_value": torch.tensor(1.0),
            "volume_id": torch.tensor(index),
            "slice_num": torch.tensor(0),
        }


def _collate(samples: list[dict]) -> dict:
    batch = default_collate(samples)
    batch["system"] = Downsampling(SCALE)
    return batch


def _loader(count: int = 4, size: int = 16, batch_size: int = 2) -> DataLoader:
    return DataLoader(_Images(count, size), batch_size=batch_size, collate_fn=_collate)


def _generator(chans: int = 8) -> SuperResolution:
    return SuperResolution(
        SRGANGenerator(chans=chans, num_blocks=1, num_upsample=1, variant="edsrgan")
    )


class _TinyDiscriminator(nn.Module):
    """(B, 1, 16, 16) -> (B, 1) logits, with a batch norm (its statistics must also stay put in
    phase 1)."""

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(1, 8, 3, stride=2, padding=1),
            nn.BatchNorm2d(8),
            nn.LeakyReLU(0.2),
            nn.Conv2d(8, 8, 3, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(8 * 4 * 4, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class _Recorder:
    """Optimizer factories whose ``step`` records, for each step, the named parameters of the
    module that it changed and the gradients present when it ran."""

    def __init__(self):
        self.module: nn.Module | None = None
        self.events: list[dict] = []

    def factory(self, tag: str, lr: float = 1e-2):
        recorder = self

        class _RecordingAdam(torch.optim.Adam):
            def step(self, *args, **kwargs):
                named = dict(recorder.module.named_parameters())
                before = {n: p.detach().clone() for n, p in named.items()}
                grads = {n: None if p.grad is None else p.grad.clone() for n, p in named.items()}
                result = super().step(*args, **kwargs)
                changed = {n for n, p in named.items() if not torch.equal(before[n], p.detach())}
                recorder.events.append(
                    {
                        "tag": tag,
                        "epoch": recorder.module.current_epoch,
                        "changed": changed,
                        "grads": grads,
                    }
                )
                return result

        return partial(_RecordingAdam, lr=lr)


class _EpochMetrics(pl.Callback):
    """The logged training values and the discriminator's state at the end of each epoch."""

    def __init__(self):
        self.metrics: list[dict] = []
        self.discriminator: list[dict] = []

    def on_train_epoch_end(self, trainer, pl_module):
        self.metrics.append({k: float(v) for k, v in trainer.callback_metrics.items()})
        self.discriminator.append(
            {k: v.detach().clone() for k, v in pl_module.discriminator.state_dict().items()}
        )


def _trainer(max_epochs: int, **kwargs) -> pl.Trainer:
    options = dict(
        max_epochs=max_epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    options.update(kwargs)
    return pl.Trainer(**options)


def _recorded_module(recorder: _Recorder, **kwargs) -> GANModule:
    module = GANModule(
        recon=_generator(),
        discriminator=_TinyDiscriminator(),
        optimizer=recorder.factory("g"),
        discriminator_optimizer=recorder.factory("d"),
        **kwargs,
    )
    recorder.module = module
    return module


def _is_generator(name: str) -> bool:
    return name.startswith("recon.")


def test_phases_and_which_network_each_step_updates():
    torch.manual_seed(0)
    recorder, epochs = _Recorder(), _EpochMetrics()
    module = _recorded_module(recorder, pretrain_epochs=2, baseline=Interpolation())
    initial_d = {k: v.clone() for k, v in module.discriminator.state_dict().items()}
    trainer = _trainer(3, callbacks=[epochs], log_every_n_steps=1)
    trainer.fit(module, _loader(), _loader())

    generator_names = {n for n, _ in module.named_parameters() if _is_generator(n)}
    discriminator_names = {n for n, _ in module.named_parameters() if n.startswith("discrim")}
    assert generator_names and discriminator_names
    assert generator_names | discriminator_names == {n for n, _ in module.named_parameters()}

    # phase 1 (epochs 0, 1): only G steps; D's weights and batch-norm statistics never change
    pretrain = [e for e in recorder.events if e["epoch"] < 2]
    assert [e["tag"] for e in pretrain] == ["g"] * 4
    for event in pretrain:
        assert event["changed"] and event["changed"] <= generator_names
    for state in epochs.discriminator[:2]:
        for key, value in initial_d.items():
            torch.testing.assert_close(state[key], value, rtol=0, atol=0)
    for metrics in epochs.metrics[:2]:
        assert "train/d_loss" not in metrics and metrics["train/phase"] == 1.0
        assert math.isfinite(metrics["train/g_loss"])

    # phase 2 (epoch 2): per batch a D step, then a G step
    adversarial = [e for e in recorder.events if e["epoch"] == 2]
    assert [e["tag"] for e in adversarial] == ["d", "g", "d", "g"]
    for event in adversarial:
        expected = discriminator_names if event["tag"] == "d" else generator_names
        other = generator_names if event["tag"] == "d" else discriminator_names
        assert event["changed"] and event["changed"] <= expected
        # the step's own network has gradients; the other has none (detached fakes in the D
        # step, toggled-off D in the G step, gradients cleared after every step)
        assert any(event["grads"][n] is not None for n in expected)
        assert all(event["grads"][n] is None for n in other)
    changed_d = any(
        not torch.equal(epochs.discriminator[2][key], value)
        for key, value in initial_d.items()
        if key.endswith("weight")
    )
    assert changed_d
    last = epochs.metrics[2]
    assert last["train/phase"] == 2.0
    for name in ("g_loss", "d_loss", "pixel", "adversarial", "d_real", "d_fake"):
        assert math.isfinite(last[f"train/{name}"]), name
    assert 0 < last["train/d_real"] < 1 and 0 < last["train/d_fake"] < 1
    # Lightning counts every optimizer step: 2 epochs x 2 G steps + 2 batches x (D + G)
    assert trainer.global_step == 8
    # validation is ReconModule's, with the bicubic baseline
    for name in ("val/psnr", "val/ssim", "val/baseline_psnr", "val/loss"):
        assert math.isfinite(float(trainer.callback_metrics[name])), name


def test_discriminator_step_gives_the_generator_no_gradient():
    """l_D's backward must not reach G: its fakes are detached (checked with toggling bypassed,
    so the detach alone is tested)."""
    torch.manual_seed(0)
    module = GANModule(recon=_generator(), discriminator=_TinyDiscriminator())
    batch = next(iter(_loader()))
    output = module.reconstruct(batch)
    d_fake = module.discriminator(output.detach())
    d_real = module.discriminator(batch["target"])
    loss = nn.functional.binary_cross_entropy_with_logits(
        d_real, torch.ones_like(d_real)
    ) + nn.functional.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
    loss.backward()
    assert all(p.grad is None for p in module.recon.parameters())
    assert all(p.grad is not None for p in module.discriminator.parameters())


def test_perceptual_loss_and_loss_decrease():
    torch.manual_seed(0)
    calls = []

    class _Perceptual(nn.Module):
        def forward(self, pred, target):
            calls.append(pred.shape)
            return ((pred - target) ** 2).mean()

    epochs = _EpochMetrics()
    module = GANModule(
        recon=_generator(),
        discriminator=_TinyDiscriminator(),
        perceptual_loss=_Perceptual(),
        perceptual_weight=0.5,
        pretrain_epochs=3,
        optimizer=partial(torch.optim.Adam, lr=1e-2),
    )
    trainer = _trainer(5, callbacks=[epochs], log_every_n_steps=1, limit_val_batches=0)
    trainer.fit(module, _loader(count=2, batch_size=2))
    pixels = [m["train/pixel"] for m in epochs.metrics[:3]]
    assert pixels[-1] < pixels[0]
    assert calls and all(shape == (2, 1, 16, 16) for shape in calls)  # phase 2 only
    assert len(calls) == 2
    for metrics in epochs.metrics[3:]:
        assert math.isfinite(metrics["train/perceptual"]) and math.isfinite(metrics["train/g_loss"])


def test_generator_checkpoint_initialises_the_generator(tmp_path):
    torch.manual_seed(0)
    pretrained = ReconModule(recon=_generator(), loss="l1")
    trainer = _trainer(1, limit_val_batches=0)
    trainer.fit(pretrained, _loader())
    path = tmp_path / "phase1.ckpt"
    trainer.save_checkpoint(path)

    module = GANModule(
        recon=_generator(), discriminator=_TinyDiscriminator(), generator_checkpoint=str(path)
    )
    for key, value in pretrained.recon.state_dict().items():
        torch.testing.assert_close(module.recon.state_dict()[key], value)

    # a plain {"state_dict": {"recon.*": ...}} file works too
    plain = tmp_path / "plain.pt"
    torch.save(
        {"state_dict": {f"recon.{k}": v for k, v in pretrained.recon.state_dict().items()}}, plain
    )
    GANModule(
        recon=_generator(), discriminator=_TinyDiscriminator(), generator_checkpoint=str(plain)
    )

    with pytest.raises(ValueError, match="phase1.ckpt") as error:
        GANModule(
            recon=_generator(chans=4),
            discriminator=_TinyDiscriminator(),
            generator_checkpoint=str(path),
        )
    assert "shape mismatch" in str(error.value)
    with pytest.raises(UserError, match="generator_checkpoint: .*nowhere.ckpt: no such file"):
        GANModule(
            recon=_generator(),
            discriminator=_TinyDiscriminator(),
            generator_checkpoint=str(tmp_path / "nowhere.ckpt"),
        )


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("adversarial_weight", -1e-3),
        ("perceptual_weight", -1.0),
        ("pixel_weight", float("nan")),
        ("pretrain_epochs", -1),
        ("pretrain_epochs", 1.5),
        ("gradient_clip_val", 0.0),
        ("gradient_clip_algorithm", "max"),
    ],
)
def test_bad_arguments_name_the_argument(argument, value):
    with pytest.raises(ValueError, match=argument):
        GANModule(recon=_generator(), discriminator=_TinyDiscriminator(), **{argument: value})


def test_hyperparameters_hold_no_modules():
    module = GANModule(recon=_generator(), discriminator=_TinyDiscriminator(), pretrain_epochs=2)
    assert module.hparams["pretrain_epochs"] == 2
    assert module.hparams["adversarial_weight"] == 1e-3
    assert not any(isinstance(v, nn.Module) for v in module.hparams.values())


def test_gradient_clipping_and_schedulers():
    torch.manual_seed(0)
    recorder = _Recorder()
    module = _recorded_module(
        recorder, pretrain_epochs=1, gradient_clip_val=1e-3, lr_scheduler=[0.5, 1]
    )
    trainer = _trainer(3, limit_val_batches=0)
    trainer.fit(module, _loader())
    for event in recorder.events:
        grads = [g for g in event["grads"].values() if g is not None]
        norm = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))
        assert norm <= 1e-3 * (1 + 1e-4)
    opt_g, opt_d = module.optimizers()
    assert opt_g.param_groups[0]["lr"] == pytest.approx(1e-2 * 0.5**3)  # every epoch
    assert opt_d.param_groups[0]["lr"] == pytest.approx(1e-2 * 0.5**2)  # phase-2 epochs


def test_checkpoint_resumes_both_optimizers(tmp_path):
    torch.manual_seed(0)

    def build():
        return GANModule(recon=_generator(), discriminator=_TinyDiscriminator(), pretrain_epochs=1)

    trainer = _trainer(2, limit_val_batches=0)
    trainer.fit(build(), _loader())
    path = tmp_path / "gan.ckpt"
    trainer.save_checkpoint(path)
    checkpoint = torch.load(path, weights_only=False)
    assert len(checkpoint["optimizer_states"]) == 2
    d_state = checkpoint["optimizer_states"][1]["state"]
    assert d_state and all(float(s["step"]) == 2 for s in d_state.values())
    assert any(key.startswith("discriminator.") for key in checkpoint["state_dict"])

    resumed = build()
    trainer = _trainer(3, limit_val_batches=0)
    trainer.fit(resumed, _loader(), ckpt_path=path)
    _, opt_d = resumed.optimizers()
    assert all(float(s["step"]) == 4 for s in opt_d.optimizer.state.values())
    assert trainer.global_step == 2 + 4 + 4


def test_srgan_discriminator_trains_one_step():
    torch.manual_seed(0)
    module = GANModule(
        recon=_generator(),
        discriminator=SRGANDiscriminator(input_size=64),
        baseline=Interpolation(),
    )
    trainer = _trainer(1, limit_train_batches=1, limit_val_batches=1)
    trainer.fit(module, _loader(count=2, size=64), _loader(count=2, size=64))
    assert math.isfinite(float(trainer.callback_metrics["train/d_loss"]))
    assert math.isfinite(float(trainer.callback_metrics["val/baseline_psnr"]))
