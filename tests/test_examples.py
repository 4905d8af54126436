"""The examples in examples/ run, and a subclassed block can be named in a config."""

import re
import runpy
from pathlib import Path

import torch

from deepinv_lab.cli import main
from tests import tiny

EXAMPLES = Path(__file__).parents[1] / "examples"


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())  # a shared parameter counts once


def test_shared_weight_varnet_script_prints_its_reconstruction_and_parameter_counts(capsys):
    script = runpy.run_path(str(EXAMPLES / "shared_weight_varnet.py"), run_name="__main__")
    printed = capsys.readouterr().out
    pattern = r"reconstruction \(([\d, ]+)\); parameters: shared ([\d,]+) vs plain ([\d,]+)\n"
    match = re.fullmatch(pattern, printed)
    assert match, printed
    shape, shared, plain = match.groups()
    assert tuple(int(n) for n in shape.split(",")) == tuple(script["batch"]["target"].shape)
    unshared = script["plain"]
    regulariser = count(unshared.cascades[0].model)
    assert int(plain.replace(",", "")) == count(unshared)
    # one regulariser for every cascade: the plain count less the other cascades' regularisers
    expected = count(unshared) - (len(unshared.cascades) - 1) * regulariser
    assert int(shared.replace(",", "")) == expected


def test_subclassed_block_is_usable_from_a_config(tiny_config, tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    args = ["fit", "--config", str(tiny_config)]
    override = ["--model.init_args.recon.class_path", "shared_weight_varnet.SharedWeightVarNet"]
    assert main([*args, *override, "--model.init_args.recon.init_args.num_cascades", "2"]) == 0
    assert "val metrics:" in capsys.readouterr().out
    from deepinv_lab.training.module import ReconModule

    last = tmp_path / "logs" / "varnet" / "version_0" / "checkpoints" / "last.ckpt"
    recon = ReconModule.load_from_checkpoint(last).recon
    assert type(recon).__name__ == "SharedWeightVarNet"
    assert recon.cascades[0].model is recon.cascades[1].model


def test_user_system_trains_from_a_config(tmp_path, monkeypatch, capsys):
    """examples/gaussian_blur.py: a System written in user code (a Gaussian blur and its adjoint),
    named in examples/deblur.json and trained by fit with nothing else written."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    from gaussian_blur import GaussianBlur

    blur = GaussianBlur(sigma=2.0)
    x, y = torch.randn(2, 1, 24, 20, dtype=torch.float64), torch.randn(2, 1, 24, 20)
    y = y.double()
    assert torch.allclose((blur(x) * y).sum(), (x * blur.H(y)).sum())  # <A x, y> = <x, A^H y>

    recon = "--model.init_args.recon.init_args."
    args = [
        "fit",
        "--config",
        str(EXAMPLES / "deblur.json"),
        *tiny.overrides("trainer", tiny.TRAINER),
        f"--trainer.logger.init_args.save_dir={tmp_path}",
        "--data.init_args.source.init_args.patch_size=32",
        "--data.init_args.batch_size=2",
        f"{recon}num_iterations=2",
        f"{recon}denoiser.init_args.chans=4",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "val/psnr=" in out and "val/baseline_psnr=" in out
    assert (tmp_path / "deblur" / "version_0" / "checkpoints" / "last.ckpt").is_file()
