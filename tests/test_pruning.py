"""Structured pruning of the Model blocks inside Recons (VarNet, DEQ, RCAN): shapes kept, the
protected layers untouched, channels removed, and a pruned ReconModule's checkpoint loading into
the config's unpruned architecture."""

import warnings

import pytest
import torch
from torch import nn

from deepinv_lab.checkpoints import STRUCTURE_KEY, apply_structure, has_pruned_architecture
from deepinv_lab.models import RCAN, DnCNN
from deepinv_lab.pruning.structured import (
    PruningError,
    block_inputs,
    prunable_blocks,
    prune_blocks,
)
from deepinv_lab.recons import DEQ, CGSense, ZeroFilled
from deepinv_lab.training.module import ReconModule
from tests.tiny import varnet as tiny_varnet


@pytest.fixture(scope="module")
def batch(mri_batch):
    return mri_batch


def convs(module: nn.Module) -> list[nn.Conv2d]:
    return [m for m in module.modules() if isinstance(m, nn.modules.conv._ConvNd)]


def tiny_deq(spectral_norm: bool) -> DEQ:
    denoiser = DnCNN(in_chans=2, num_layers=4, chans=16, batch_norm=False, residual=False)
    return DEQ(denoiser, max_iter=5, spectral_norm=spectral_norm, on_failure="ignore")


def prune(recon: nn.Module, run, ratio=0.5, importance="l1", scope="per_block", loss=None):
    blocks = prunable_blocks(recon)
    inputs = block_inputs(recon, blocks, run)
    with torch.no_grad():
        shapes = {name: block(*inputs[name]).shape for name, block in blocks.items()}
    report = prune_blocks(blocks, inputs, ratio, importance, scope, loss)
    with torch.no_grad():  # every block takes and gives what it did: the data's channels
        for name, block in blocks.items():
            assert block(*inputs[name]).shape == shapes[name]
    return blocks, report


@pytest.mark.parametrize("importance", ["l1", "l2", "taylor"])
@pytest.mark.parametrize("scope", ["per_block", "global"])
def test_varnet_cascade_unets_are_pruned_and_the_recon_keeps_its_shapes(batch, importance, scope):
    torch.manual_seed(0)
    varnet = tiny_varnet()
    y, system = batch["y"], batch["system"]
    before = varnet(y, system)
    sens_params = sum(p.numel() for p in varnet.sens_net.parameters())
    blocks, report = prune(
        varnet, lambda: varnet(y, system), 0.5, importance, scope,
        loss=lambda: (varnet(y, system) - batch["target"]).abs().mean(),
    )  # fmt: skip
    assert sorted(blocks) == ["cascades.0.model.unet", "cascades.1.model.unet"]
    removed = sum(r.channels_before - r.channels_after for r in report)
    total = sum(r.channels_before - 2 for r in report)  # the 2 output channels are protected
    assert 0.4 < removed / total < 0.6
    assert all(r.params_after < 0.5 * r.params_before for r in report)
    assert sum(p.numel() for p in varnet.sens_net.parameters()) == sens_params  # left alone
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no stale InstanceNorm channel counts
        after = varnet(y, system)
    assert after.shape == before.shape and torch.isfinite(after).all()


def test_the_sensitivity_network_is_pruned_only_when_asked():
    varnet = tiny_varnet()
    assert not any(name.startswith("sens_net") for name in prunable_blocks(varnet))
    assert "sens_net.norm_unet.unet" in prunable_blocks(varnet, include_sensitivity=True)


@pytest.mark.parametrize("spectral_norm", [False, True])
def test_deq_denoiser_is_pruned(batch, spectral_norm):
    torch.manual_seed(0)
    deq = tiny_deq(spectral_norm)
    y, system = batch["y"], batch["system"]
    before = deq(y, system)
    blocks, report = prune(deq, lambda: deq(y, system))
    assert len(blocks) == 1 and report[0].params_after < 0.5 * report[0].params_before
    after = deq(y, system)
    assert after.shape == before.shape and torch.isfinite(after).all()


def test_pruning_a_deep_copy_leaves_the_spectrally_normalised_original_intact(batch):
    """Deep copies of a parametrized layer share its generated class; removing the spectral
    norm of the copy for pruning must not remove the original's ``weight``."""
    import copy

    torch.manual_seed(0)
    deq = tiny_deq(spectral_norm=True).eval()
    y, system = batch["y"], batch["system"]
    with torch.no_grad():
        before = deq(y, system)
    pruned = copy.deepcopy(deq)
    prune(pruned, lambda: pruned(y, system))
    with torch.no_grad():
        assert torch.equal(deq(y, system), before)
        assert pruned(y, system).shape == before.shape


def test_rcan_is_pruned_and_keeps_its_upsampling():
    torch.manual_seed(0)
    rcan, x = RCAN.example()
    before = rcan(x)
    blocks, report = prune(rcan, lambda: rcan(x), ratio=0.25)
    after = rcan(x)
    assert after.shape == before.shape and report[0].params_after < report[0].params_before


def test_bad_ratio_and_nothing_prunable():
    varnet = tiny_varnet()
    blocks = prunable_blocks(varnet)
    for ratio in (0, 1, 1.5, -0.1):
        with pytest.raises(PruningError, match=r"prune.ratio must be in \(0, 1\)"):
            prune_blocks(blocks, {}, ratio)
    with pytest.raises(PruningError, match="prune.importance must be one of"):
        prune_blocks(blocks, {}, 0.5, importance="l3")
    for recon in (ZeroFilled(), CGSense()):
        with pytest.raises(PruningError, match=f"nothing to prune in {type(recon).__name__}"):
            prunable_blocks(recon)


def test_a_pruned_checkpoint_loads_into_the_unpruned_architecture(batch):
    torch.manual_seed(0)
    module = ReconModule(recon=tiny_varnet())
    y, system = batch["y"], batch["system"]
    prune(module.recon, lambda: module.recon(y, system))
    checkpoint = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(checkpoint)
    assert STRUCTURE_KEY in checkpoint

    fresh = ReconModule(recon=tiny_varnet())  # what the config builds
    with pytest.raises(RuntimeError, match="size mismatch"):
        fresh.load_state_dict(checkpoint["state_dict"])
    fresh.on_load_checkpoint(checkpoint)
    fresh.load_state_dict(checkpoint["state_dict"])
    module.eval(), fresh.eval()
    with torch.no_grad():
        torch.testing.assert_close(fresh.recon(y, system), module.recon(y, system))
    assert has_pruned_architecture(fresh)  # and its own checkpoints keep the structure

    other = ReconModule(recon=tiny_varnet(num_cascades=1))
    with pytest.raises(ValueError, match="layer 'recon.cascades.1.*does not match the config"):
        apply_structure(other, checkpoint[STRUCTURE_KEY], checkpoint["state_dict"])
