"""deepinv_lab.checkpoints: one reader with plain errors, one Recon-weight loader that every
consumer goes through (a pruned checkpoint loads through each of them), and where runs resume."""

import os
import time
import warnings

import pytest
import torch
from torch import nn

from deepinv_lab.checkpoints import (
    STRUCTURE_KEY,
    has_pruned_architecture,
    load_recon_weights,
    read_checkpoint,
    resumable_runs,
    resume_checkpoint,
)
from deepinv_lab.errors import UserError
from deepinv_lab.models import RCAN
from deepinv_lab.pruning.structured import block_inputs, prunable_blocks, prune_blocks
from deepinv_lab.recons import Refinement
from deepinv_lab.training.gan import GANModule
from deepinv_lab.training.module import ReconModule
from deepinv_lab.training.objectives import Distillation
from tests.tiny import varnet as tiny_varnet


@pytest.fixture(scope="module")
def batch(mri_batch):
    return mri_batch


@pytest.fixture(scope="module")
def pruned(batch, tmp_path_factory):
    """A pruned VarNet's ReconModule checkpoint (as ``deepinv-lab prune`` writes it) and the
    pruned VarNet's output on ``batch``."""
    with torch.random.fork_rng():
        torch.manual_seed(1)
        module = ReconModule(recon=tiny_varnet())
    y, system = batch["y"], batch["system"]
    blocks = prunable_blocks(module.recon)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inputs = block_inputs(module.recon, blocks, lambda: module.recon(y, system))
        prune_blocks(blocks, inputs, 0.5)
    checkpoint = {"state_dict": module.state_dict(), "hyper_parameters": {}}
    module.on_save_checkpoint(checkpoint)
    assert STRUCTURE_KEY in checkpoint
    path = tmp_path_factory.mktemp("pruned") / "pruned.ckpt"
    torch.save(checkpoint, path)
    with torch.no_grad():
        return path, module.recon.eval()(y, system)


def output(recon: nn.Module, batch) -> torch.Tensor:
    with torch.no_grad():
        return recon.eval()(batch["y"], batch["system"])


def reloads(module: ReconModule, make) -> ReconModule:
    """``module``'s own checkpoint loads into a freshly configured module: it carries the
    pruned architecture of whatever part came from a pruned checkpoint."""
    checkpoint = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(checkpoint)
    assert STRUCTURE_KEY in checkpoint
    fresh = make()
    fresh.on_load_checkpoint(checkpoint)
    fresh.load_state_dict(checkpoint["state_dict"])
    return fresh


def test_load_recon_weights_adopts_the_pruned_architecture(pruned, batch):
    path, expected = pruned
    recon = tiny_varnet()
    assert load_recon_weights(recon, path, "init_from") is True
    assert has_pruned_architecture(recon)
    torch.testing.assert_close(output(recon, batch), expected)


def test_init_from(pruned, batch):
    path, expected = pruned
    module = ReconModule(recon=tiny_varnet(), init_from=str(path))
    module.setup("fit")
    torch.testing.assert_close(output(module.recon, batch), expected)
    fresh = reloads(module, lambda: ReconModule(recon=tiny_varnet()))
    torch.testing.assert_close(output(fresh.recon, batch), expected)


def test_refinement_recon_checkpoint(pruned, batch):
    path, expected = pruned

    def refinement(checkpoint):
        model = RCAN(1, 1, chans=4, num_groups=1, num_blocks=1, reduction=2, scale=1)
        nn.init.zeros_(model.tail[-1].weight)  # R(x) = 0: the output is the first stage's
        nn.init.zeros_(model.tail[-1].bias)
        return Refinement(tiny_varnet(), model, freeze_recon=True, recon_checkpoint=checkpoint)

    hybrid = refinement(str(path))
    torch.testing.assert_close(output(hybrid.recon, batch), expected)
    torch.testing.assert_close(output(hybrid, batch), expected)
    # the trained hybrid's checkpoint loads into the config's (unpruned) hybrid
    fresh = reloads(ReconModule(recon=hybrid), lambda: ReconModule(recon=refinement(None)))
    torch.testing.assert_close(output(fresh.recon, batch), expected)


def test_gan_generator_checkpoint(pruned, batch):
    path, expected = pruned

    def gan(checkpoint):
        discriminator = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.LazyLinear(1))
        return GANModule(
            recon=tiny_varnet(), discriminator=discriminator, generator_checkpoint=checkpoint
        )

    module = gan(str(path))
    torch.testing.assert_close(output(module.recon, batch), expected)
    module.discriminator(torch.zeros(1, 1, 64, 64))  # materialise the lazy layer
    fresh = gan(None)
    fresh.discriminator(torch.zeros(1, 1, 64, 64))
    fresh = reloads(module, lambda: fresh)
    torch.testing.assert_close(output(fresh.recon, batch), expected)


def test_distillation_teacher(pruned, batch):
    path, expected = pruned
    module = ReconModule(recon=tiny_varnet(), objectives=[Distillation(str(path))])
    module.setup("fit")
    torch.testing.assert_close(output(module.objectives[0].teacher_recon, batch), expected)
    assert not has_pruned_architecture(module.recon)  # the student keeps its own


def test_a_mismatched_checkpoint_names_the_option_the_file_and_the_layers(pruned):
    path, _ = pruned
    other = tiny_varnet(num_cascades=3)
    with pytest.raises(UserError, match=r"recon_checkpoint: .*pruned.ckpt.*cascades\.2"):
        load_recon_weights(other, path, "recon_checkpoint")
    unpruned = {"state_dict": {f"recon.{k}": v for k, v in tiny_varnet().state_dict().items()}}
    wider = tiny_varnet(chans=12)
    with pytest.raises(UserError, match=r"init_from: .*shape mismatch.*in the file.*here"):
        load_recon_weights(wider, "x.ckpt", "init_from", checkpoint=unpruned)


def test_a_plain_state_dict_of_the_recon_loads_too(tmp_path, batch):
    recon = tiny_varnet()
    torch.save(recon.state_dict(), tmp_path / "plain.pt")
    other = tiny_varnet()
    assert load_recon_weights(other, tmp_path / "plain.pt") is False
    torch.testing.assert_close(output(other, batch), output(recon, batch))


@pytest.mark.parametrize(
    "content, needle",
    [
        (None, "no such file"),
        ("folder", "is a directory"),
        (b"some notes\n", "not a readable checkpoint"),
        ("truncated", "looks truncated"),
        ([1, 2, 3], "it holds a list"),
        ({"epoch": 3}, "no 'state_dict' of weights"),
    ],
    ids=["missing", "folder", "text", "truncated", "list", "no-weights"],
)
def test_unreadable_checkpoints_are_one_plain_line(tmp_path, content, needle):
    path = tmp_path / "x.ckpt"
    if content == "folder":
        path.mkdir()
    elif content == "truncated":
        torch.save({"state_dict": tiny_varnet().state_dict()}, path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(UserError) as raised:
        read_checkpoint(path, "--ckpt_path")
    message = str(raised.value)
    assert message.startswith(f"--ckpt_path: {path}") and needle in message
    assert "\n" not in message


def test_resume_checkpoint_and_resumable_runs(tmp_path):
    root = tmp_path / "logs" / "varnet"
    assert resumable_runs(root) == [] and resume_checkpoint(root / "version_0") is None
    for version, names in ((0, ["last.ckpt"]), (1, []), (2, ["last-step.ckpt", "last.ckpt"])):
        folder = root / f"version_{version}" / "checkpoints"
        folder.mkdir(parents=True)
        for name in names:
            (folder / name).write_bytes(b"x")
    now = time.time()
    os.utime(root / "version_0/checkpoints/last.ckpt", (now, now))
    os.utime(root / "version_2/checkpoints/last.ckpt", (now - 20, now - 20))
    os.utime(root / "version_2/checkpoints/last-step.ckpt", (now - 10, now - 10))
    # the newer of a run's two names; runs newest first; a run without checkpoints is none
    assert resume_checkpoint(root / "version_2").name == "last-step.ckpt"
    assert resumable_runs(root) == [root / "version_0", root / "version_2"]


def test_moved_datamodules_of_older_checkpoints_resolve():
    """Checkpoints name the DataModule they were trained with; those that moved to
    ``deepinv_lab.data.presets`` are read under their new path (same arguments), and the
    checkpoint dict is not changed."""
    import importlib

    from deepinv_lab.checkpoints.config import MOVED_DATA_CLASSES, stored_run_config

    for old, new in MOVED_DATA_CLASSES.items():
        data = {"class_path": old, "init_args": {"batch_size": 2}}
        checkpoint = {"deepinv_lab_config": {"data": data, "seed_everything": 0}}
        stored = stored_run_config(checkpoint)
        assert stored["data"] == {"class_path": new, "init_args": {"batch_size": 2}}
        assert checkpoint["deepinv_lab_config"]["data"]["class_path"] == old
        module, name = new.rsplit(".", 1)
        assert old.rsplit(".", 1)[1] == name
        assert (
            "batch_size"
            in importlib.import_module(module).__dict__[name].__init__.__code__.co_varnames
        )
