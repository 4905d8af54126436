"""The examples in examples/ run, and a subclassed block can be named in a config."""

import subprocess
import sys
from pathlib import Path

from deepinv_lab.cli import main

EXAMPLES = Path(__file__).parents[1] / "examples"


def test_shared_weight_varnet_script_runs():
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "shared_weight_varnet.py")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "parameters: shared" in result.stdout


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
