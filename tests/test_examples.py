"""The examples in examples/ run, and a subclassed block can be named in a config."""

import re
import runpy
from pathlib import Path

from deepinv_lab.cli import main

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
