"""Training options through the config: optimizers, StepLR shorthand, mixed precision, gradient
clipping and accumulation, EMA of the weights."""

import numpy as np
import pytest
import torch
from torch import nn

from deepinv_lab.cli import main
from deepinv_lab.training.callbacks import EMA
from deepinv_lab.training.schedulers import make_scheduler


def test_step_shorthand_is_steplr():
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = make_scheduler([0.5, 2])(optimizer)
    assert isinstance(scheduler, torch.optim.lr_scheduler.StepLR)
    lrs = []
    for _ in range(5):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.25]
    assert make_scheduler(None) is None
    exponential = torch.optim.lr_scheduler.ExponentialLR
    assert make_scheduler(exponential) is exponential  # a scheduler class is kept as it is


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ([2.0, 3], "0 < factor <= 1, got factor 2.0"),
        ([0.5, 0], "every_n_epochs >= 1, got 0"),
        ([0.5, 1.5], "every_n_epochs >= 1, got 1.5"),
        ([0.5], "[factor, every_n_epochs] or null, got [0.5]"),
    ],
)
def test_bad_step_shorthand_names_the_key(spec, message):
    with pytest.raises(ValueError, match="lr_scheduler") as error:
        make_scheduler(spec)
    assert message in str(error.value)


class _Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(2, 1)


def test_ema_averages_after_each_step_and_evaluates_with_the_average():
    module = _Linear()
    ema = EMA(decay=0.5)
    trainer = type("T", (), {"global_step": 1})()
    ema.on_fit_start(trainer, module)
    start = module.layer.weight.detach().clone()
    with torch.no_grad():
        module.layer.weight.add_(2.0)
    ema.on_train_batch_end(trainer, module, None, None, 0)
    expected = 0.5 * start + 0.5 * (start + 2.0)
    torch.testing.assert_close(ema.average["layer.weight"], expected)
    raw = module.layer.weight.detach().clone()
    ema.on_validation_start(trainer, module)
    torch.testing.assert_close(module.layer.weight.detach(), expected)
    ema.on_validation_end(trainer, module)
    torch.testing.assert_close(module.layer.weight.detach(), raw)
    restored = EMA()
    restored.load_state_dict(ema.state_dict())
    torch.testing.assert_close(restored.average["layer.weight"], expected)
    with pytest.raises(ValueError, match="decay"):
        EMA(decay=1.0)


def test_config_options_train_together(tiny_config, tmp_path):
    args = [
        "fit", "--config", str(tiny_config), "--trainer.max_epochs", "2",
        "--trainer.precision", "bf16-mixed", "--trainer.gradient_clip_val", "0.5",
        "--trainer.accumulate_grad_batches", "2",
        "--model.init_args.optimizer", "AdamW", "--model.init_args.optimizer.lr", "0.01",
        "--model.init_args.lr_scheduler", "[0.5, 1]",
        "--trainer.callbacks+=EMA", "--trainer.callbacks.decay", "0.9",
    ]  # fmt: skip
    assert main(args) == 0
    checkpoint = torch.load(
        tmp_path / "logs/varnet/version_0/checkpoints/last.ckpt", weights_only=False
    )
    assert checkpoint["global_step"] == 2  # 2 epochs x 2 batches, accumulated by 2
    (group,) = checkpoint["optimizer_states"][0]["param_groups"]
    assert group["lr"] == pytest.approx(0.01 * 0.25) and "amsgrad" in group  # AdamW, halved twice
    (ema_state,) = [v for k, v in checkpoint["callbacks"].items() if k.startswith("EMA")]
    assert ema_state["decay"] == 0.9
    weights = checkpoint["state_dict"]
    assert ema_state["average"].keys() <= weights.keys()
    assert any(not torch.equal(ema_state["average"][k], weights[k]) for k in ema_state["average"])


def test_rng_state_callback_restores_the_generators():
    from deepinv_lab.training.callbacks import RNGState

    torch.manual_seed(3)
    state = RNGState().state_dict()
    expected = torch.rand(4), np.random.rand(2)
    torch.rand(10), np.random.rand(3)  # the run goes on, elsewhere
    state = torch.load(io_roundtrip(state), weights_only=True)
    RNGState().load_state_dict(state)
    torch.testing.assert_close(torch.rand(4), expected[0], rtol=0, atol=0)
    np.testing.assert_array_equal(np.random.rand(2), expected[1])


def io_roundtrip(state: dict):
    """``state`` saved to an in-memory file, as in a checkpoint."""
    import io

    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return buffer
