"""fastMRI's published weights load: a ``state_dict`` saved from the ``fastmri`` package's VarNet
and U-Net (the format of ``varnet_knee_mc.pt``, ``unet_knee_sc.pt``) is accepted by ``init_from``
and by :func:`~deepinv_lab.checkpoints.weights.load_recon_weights`; the Recon then computes what
fastMRI's model computes."""

from pathlib import Path

import fastmri.models
import pytest
import torch

from deepinv_lab.checkpoints.weights import load_recon_weights
from deepinv_lab.cli import main
from deepinv_lab.errors import UserError
from deepinv_lab.models import Unet
from deepinv_lab.recons import PostProcessing
from deepinv_lab.recons.varnet import VarNet
from tests import tiny
from tests.test_configs import TINY

CONFIGS = Path(__file__).parents[1] / "configs"
ZERO = '{"class_path": "deepinv_lab.recons.ZeroFilled"}'


def _saved(model: torch.nn.Module, path: Path) -> Path:
    torch.manual_seed(3)
    with torch.no_grad():
        for parameter in model.parameters():  # not the initialisation: real numbers to carry
            parameter.normal_(0.0, 0.1)
    torch.save(model.state_dict(), path)
    return path


def test_fastmri_varnet_state_dict_loads_into_varnet(tmp_path):
    reference = fastmri.models.VarNet(num_cascades=2, chans=4, pools=2, sens_chans=2, sens_pools=2)
    path = _saved(reference, tmp_path / "varnet_knee_mc.pt")
    ours = VarNet(num_cascades=2, chans=4, num_pool_layers=2, sens_chans=2, sens_num_pool_layers=2)
    assert load_recon_weights(ours, path) is False  # not a pruned architecture
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[key], value, rtol=0, atol=0)


def test_fastmri_unet_state_dict_loads_into_the_network_of_a_recon(tmp_path):
    """fastMRI's U-Net weights are the network alone; a PostProcessing(Unet) Recon keeps it as
    ``model``: the weights go there, and the network computes fastMRI's output."""
    reference = fastmri.models.Unet(in_chans=1, out_chans=1, chans=4, num_pool_layers=2)
    path = _saved(reference, tmp_path / "unet_knee_sc.pt")
    recon = PostProcessing(Unet(in_chans=1, out_chans=1, chans=4, num_pool_layers=2))
    load_recon_weights(recon, path)
    x = torch.randn(2, 1, 32, 24)
    with torch.no_grad():
        torch.testing.assert_close(recon.model.eval()(x), reference.eval()(x))


def test_weights_of_another_size_are_named(tmp_path):
    reference = fastmri.models.Unet(in_chans=1, out_chans=1, chans=4, num_pool_layers=2)
    path = _saved(reference, tmp_path / "unet.pt")
    recon = PostProcessing(Unet(in_chans=1, out_chans=1, chans=8, num_pool_layers=2))
    with pytest.raises(UserError, match=r"init_from: checkpoint .*unet\.pt.* does not fit"):
        load_recon_weights(recon, path)


def test_init_from_takes_fastmri_varnet_weights_on_the_command_line(tmp_path, capsys):
    """``fit --config configs/varnet.json --model.init_args.init_from varnet_knee_mc.pt`` with
    the architecture of the file: the run starts from fastMRI's weights (learning rate 0 keeps
    them, and the checkpoint holds them)."""
    sizes = tiny.VARNET
    reference = fastmri.models.VarNet(
        num_cascades=sizes["num_cascades"], chans=sizes["chans"], pools=sizes["num_pool_layers"],
        sens_chans=sizes["sens_chans"], sens_pools=sizes["sens_num_pool_layers"],
    )  # fmt: skip
    path = _saved(reference, tmp_path / "varnet_knee_mc.pt")
    args = ["fit", "--config", str(CONFIGS / "varnet.json"), *TINY["varnet"],
            *tiny.overrides("trainer", tiny.TRAINER),
            f"--trainer.logger.init_args.save_dir={tmp_path}",
            f"--model.init_args.init_from={path}", "--model.init_args.optimizer.init_args.lr=0.0",
            f"--model.init_args.baseline={ZERO}"]  # fmt: skip
    assert main(args) == 0
    (checkpoint,) = tmp_path.glob("*/version_0/checkpoints/last.ckpt")
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(state[f"recon.{key}"], value, rtol=0, atol=0)
