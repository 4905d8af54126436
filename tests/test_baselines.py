"""Several baselines (``ReconModule(baseline={name: Recon})``): each logged as ``val/<name>_*``
and ``test/<name>_*`` and in the test tables, a single baseline still ``val/baseline_*``, names
checked, the mapping built from a config by ``deepinv-lab fit``, baselines neither trained nor
saved (older checkpoints with ``baseline.*`` weights load), and ``collect`` grouping their
columns."""

import csv
import json
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from deepinv_lab.cli import main
from deepinv_lab.errors import UserError
from deepinv_lab.grid.collect import columns, format_table
from deepinv_lab.recons import CGSense, Interpolation, L1WaveletRecon, ZeroFilled
from deepinv_lab.training.baselines import is_baseline_metric
from deepinv_lab.training.gan import GANModule
from deepinv_lab.training.module import ReconModule

pytestmark = pytest.mark.usefixtures("one_thread")

METRICS = ("ssim", "psnr", "nmse")


def classical() -> dict:
    """Three MRI baselines, cheap enough for 32 x 32 images."""
    return {
        "zero_filled": ZeroFilled(),
        "cg_sense": CGSense(damping=0.01, max_iter=5, on_failure="ignore"),
        "l1_wavelet": L1WaveletRecon(lamda=3e-4, levels=2, max_iter=5),
    }


@pytest.fixture(scope="module")
def data():
    from deepinv_lab.data.presets import SimulatedBrainMRIDataModule

    with torch.random.fork_rng():
        return SimulatedBrainMRIDataModule(
            image_size=(64, 64), downsample=2, num_coils=2, train_size=2
        )


def validate(module: ReconModule, data) -> dict[str, float]:
    trainer = pl.Trainer(
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        limit_val_batches=2,
    )
    trainer.validate(module, datamodule=data, verbose=False)
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


def test_each_baseline_is_logged_under_its_name(data):
    module = ReconModule(CGSense(max_iter=5, on_failure="ignore"), baseline=classical())
    assert module.prefixes == ("", "zero_filled_", "cg_sense_", "l1_wavelet_")
    metrics = validate(module, data)
    for name in ("zero_filled", "cg_sense", "l1_wavelet"):
        assert all(f"val/{name}_{metric}" in metrics for metric in METRICS)
    assert not any(key.startswith("val/baseline_") for key in metrics)
    # three reconstructions, three sets of numbers
    assert len({metrics[f"val/{name}_psnr"] for name in classical()}) == 3
    # the Recon here is the cg_sense baseline itself
    assert metrics["val/psnr"] == pytest.approx(metrics["val/cg_sense_psnr"])


def test_a_single_baseline_is_logged_as_before(data):
    module = ReconModule(CGSense(max_iter=5, on_failure="ignore"), baseline=ZeroFilled())
    assert module.prefixes == ("", "baseline_")
    metrics = validate(module, data)
    assert all(f"val/baseline_{metric}" in metrics for metric in METRICS)
    # "baseline" as a name of the mapping gives the same keys
    named = ReconModule(CGSense(max_iter=5), baseline={"baseline": ZeroFilled()})
    assert named.prefixes == ("", "baseline_")


def test_the_image_grids_get_the_first_baseline(data):
    module = ReconModule(ZeroFilled(), baseline=classical())
    data.setup("validate")
    batch = next(iter(data.val_dataloader()))
    with torch.no_grad():
        outputs = module.validation_step(batch, 0)
        first = module.reconstruct(batch, module.baselines["zero_filled"])
    torch.testing.assert_close(outputs["baseline"], first)
    assert ReconModule(ZeroFilled()).validation_step(batch, 0)["baseline"] is None


@pytest.mark.parametrize(
    "baseline, needle",
    [
        ({"zero-filled": ZeroFilled()}, "'zero-filled' is not an identifier"),
        ({"1st": ZeroFilled()}, "'1st' is not an identifier"),
        ({"": ZeroFilled()}, "'' is not an identifier"),
        ({"ssim": ZeroFilled()}, "'ssim' is reserved"),
        ({"loss": ZeroFilled()}, "'loss' is reserved"),
        ({"cg": "CGSense"}, "model.baseline.cg: a baseline must be a Recon"),
        ("ZeroFilled", "model.baseline: a baseline must be a Recon"),
    ],
)
def test_bad_baselines_name_the_key(baseline, needle):
    with pytest.raises(UserError, match="^model.baseline") as error:
        ReconModule(ZeroFilled(), baseline=baseline)
    assert needle in str(error.value)


def test_a_baseline_that_cannot_reconstruct_the_data_is_named(data):
    baselines = {"zero_filled": ZeroFilled(), "coarse": L1WaveletRecon(levels=6)}  # 32 x 32
    with pytest.raises(UserError, match="^model.baseline.coarse L1WaveletRecon cannot"):
        validate(ReconModule(ZeroFilled(), baseline=baselines), data)
    with pytest.raises(UserError, match="^model.baseline L1WaveletRecon cannot"):
        validate(ReconModule(ZeroFilled(), baseline=L1WaveletRecon(levels=6)), data)


def test_baselines_are_not_trained_nor_saved_and_follow_the_module():
    baselines = {"cg_sense": CGSense(learn_damping=True), "l1_wavelet": L1WaveletRecon()}
    module = ReconModule(CGSense(learn_damping=True), baseline=baselines)
    assert [name for name, _ in module.named_parameters()] == ["recon.log_damping"]
    assert not any(p.requires_grad for p in baselines["cg_sense"].parameters())
    assert not any(key.startswith("baseline") for key in module.state_dict())
    module.double()
    assert baselines["cg_sense"].log_damping.dtype == torch.float64
    assert baselines["l1_wavelet"].wavelet.filters.dtype == torch.float64


def test_older_checkpoints_with_baseline_weights_load():
    """A single baseline used to be a submodule: CG-SENSE's ``baseline.log_damping`` is in the
    state dicts of older checkpoints. They load strictly, whatever the baselines are now."""
    state = ReconModule(CGSense(learn_damping=True)).state_dict()
    state["baseline.log_damping"] = torch.tensor(-4.6)
    for baseline in (None, CGSense(), classical()):
        module = ReconModule(CGSense(learn_damping=True), baseline=baseline)
        module.load_state_dict(state)
    assert float(module.baselines["cg_sense"].damping) == pytest.approx(0.01)


def test_gan_module_passes_the_baselines_through():
    from torch import nn

    discriminator = nn.Sequential(nn.Flatten(), nn.LazyLinear(1))
    module = GANModule(
        ZeroFilled(), discriminator, baseline={"bicubic": Interpolation(), "zf": ZeroFilled()}
    )
    assert module.prefixes == ("", "bicubic_", "zf_")


def write_config(tmp_path: Path, baseline) -> Path:
    from tests.conftest import write_tiny_config

    config = json.loads(write_tiny_config(tmp_path).read_text())
    config["model"]["init_args"]["baseline"] = baseline
    path = tmp_path / "baselines.json"
    path.write_text(json.dumps(config))
    return path


CONFIG_BASELINES = {
    "zero_filled": {"class_path": "deepinv_lab.recons.ZeroFilled"},
    "cg_sense": {"class_path": "CGSense", "init_args": {"damping": 0.01, "max_iter": 5}},
    "l1_wavelet": {
        "class_path": "deepinv_lab.recons.Normalized",
        "init_args": {
            "recon": {
                "class_path": "deepinv_lab.recons.L1WaveletRecon",
                "init_args": {"lamda": 3e-4, "levels": 3, "max_iter": 5},
            }
        },
    },
}


def test_fit_and_test_from_a_config_with_named_baselines(tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = write_config(tmp_path, CONFIG_BASELINES)
    assert main(["fit", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    for name in CONFIG_BASELINES:
        assert f"val/{name}_ssim=" in out
    assert "val/baseline_ssim" not in out
    run = tmp_path / "logs" / "varnet" / "version_0"
    last = run / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, map_location="cpu", weights_only=False)
    assert not any(key.startswith("baseline") for key in checkpoint["state_dict"])
    events = EventAccumulator(str(run)).Reload()
    assert {"val/l1_wavelet_psnr", "hp/val_l1_wavelet_ssim"} <= set(events.Tags()["scalars"])
    assert any(t.startswith("val/target_baseline_recon_error") for t in events.Tags()["images"])

    assert main(["test", "--ckpt_path", str(last)]) == 0  # the config stored in the checkpoint
    capsys.readouterr()
    table = json.loads((run / "test" / "test_metrics.json").read_text())
    for name in CONFIG_BASELINES:
        assert all(f"test/{name}_{metric}" in table["mean"] for metric in METRICS)
    with open(run / "test" / "test_metrics.csv") as file:
        header = next(csv.reader(file))
    assert header[:2] == ["volume_id", "fname"]
    assert {"ssim", "zero_filled_ssim", "cg_sense_psnr", "l1_wavelet_nmse", "slices"} <= set(header)
    assert not any(column.startswith("baseline_") for column in header)


def test_grid_runs_resolve_named_baselines(tmp_path):
    """The resolved config of a grid run (its config.json) keeps the mapping: jsonargparse's
    unvalidated dump would write it as one ``Recon`` with the names as init_args."""
    from deepinv_lab.cli import config_parser
    from deepinv_lab.grid.resolve import ConfigResolver

    resolved = ConfigResolver(config_parser(), write_config(tmp_path, CONFIG_BASELINES)).base
    baseline = resolved["model"]["init_args"]["baseline"]
    assert list(baseline) == list(CONFIG_BASELINES)
    assert baseline["cg_sense"]["class_path"] == "deepinv_lab.recons.CGSense"


def test_a_bad_baseline_name_in_a_config_is_one_line(tmp_path, capsys):
    config = write_config(tmp_path, {"zero filled": {"class_path": "ZeroFilled"}})
    assert main(["fit", "--config", str(config), "--trainer.max_epochs=0"]) == 2
    err = capsys.readouterr().err
    assert "model.baseline: the baseline name 'zero filled' is not an identifier" in err
    assert "Traceback" not in err


def test_collect_groups_every_baselines_columns():
    row = {
        "number": 1,
        "name": "E001",
        "status": "completed",
        "fit_s": 3.0,
        "val/ssim_best": 0.9,
        "val/cg/iterations_final": 3.0,
        "val/zero_filled_ssim_best": 0.7,
        "val/baseline_psnr_final": 25.0,
        "val/l1_wavelet_nmse_best": 0.01,
        "val/loss_final": 0.1,
        "test/ssim": 0.9,
        "test/l1_wavelet_ssim": 0.8,
    }
    order = columns([row], [])
    assert order == [
        "number",
        "name",
        "status",
        "fit_s",
        "val/cg/iterations_final",
        "val/loss_final",
        "val/ssim_best",
        "test/l1_wavelet_ssim",
        "test/ssim",
        "val/baseline_psnr_final",
        "val/l1_wavelet_nmse_best",
        "val/zero_filled_ssim_best",
    ]
    header = format_table([row], [], None).splitlines()[0].split()
    assert header == ["name", "status", "fit_s", "val/ssim_best", "test/ssim"]
    assert not is_baseline_metric("val/cg/iterations") and is_baseline_metric("test/cg_sense_psnr")
