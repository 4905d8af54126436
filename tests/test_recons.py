"""Recons built from blocks: MoDL, unrolled proximal gradient, DEQ, the image-domain Recons, the
VarNet + refinement hybrid, and their baselines."""

import re

import pytest
import torch
from torch import nn

from deepinv_lab.errors import UserError
from deepinv_lab.functional import rss, upsample_bicubic
from deepinv_lab.models import RCAN, BiasFreeDnCNN, DnCNN, ResNetDenoiser, Unet
from deepinv_lab.optim.data_consistency import GradientDescentStep, ProximalDataConsistency
from deepinv_lab.optim.unroll import ModlIteration, Unrolled
from deepinv_lab.recons import (
    DEQ,
    CGSense,
    Denoiser,
    Interpolation,
    L1WaveletRecon,
    MoDL,
    NoisyInput,
    PostProcessing,
    Refinement,
    SuperResolution,
    TVRecon,
    UnrolledProximalGradient,
    VarNet,
    ZeroFilled,
)
from deepinv_lab.systems.base import Identity as IdentitySystem
from deepinv_lab.systems.downsampling import Downsampling
from deepinv_lab.systems.mri import MultiCoilMRI

#: The diagnostics vocabulary: ``<block>/<quantity>`` (docs/conventions.md#vocabulary).
DIAGNOSTICS = re.compile(
    r"(cg|deq)/(backward_)?(iterations|relative_residual)"
    r"|(fista|pdhg)/(iterations|relative_residual|lamda|objective)"
    r"|(pnp|red)/(iterations|relative_residual|primal_residual|cg_iterations)"
    r"|cg/damping|gradient_step/step_size"
)


def _check_vocabulary(diagnostics: dict[str, float]) -> None:
    unknown = [key for key in diagnostics if not DIAGNOSTICS.fullmatch(key)]
    assert not unknown, f"diagnostics keys outside the vocabulary: {unknown}"


def _mri(batch=2, dtype=torch.complex64, seed=0):
    system, _ = MultiCoilMRI.example(batch_size=batch, dtype=dtype)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 1, *system.coil_maps.shape[-2:], dtype=dtype, generator=generator)
    return system, system(x), x


class Identity(nn.Module):
    def forward(self, x):
        return x


def test_proximal_gradient_with_identity_prior_is_landweber():
    """D = identity: K unrolled steps are K Landweber iterations x <- x - eta A^H(Ax - y)."""
    system, y, _ = _mri(dtype=torch.complex128)
    recon = UnrolledProximalGradient(
        Identity(), num_iterations=4, step_size=0.7, magnitude=False
    ).double()
    x = system.adjoint(y)
    for _ in range(4):
        x = x - 0.7 * system.adjoint(system(x) - y)
    torch.testing.assert_close(recon(y, system), x)
    assert recon.diagnostics() == pytest.approx({"gradient_step/step_size": 0.7})
    _check_vocabulary(recon.diagnostics())


def test_cgsense_diagnostics():
    system, y, _ = _mri()
    recon = CGSense(damping=0.01)
    assert recon.diagnostics() == pytest.approx({"cg/damping": 0.01})
    recon(y, system)
    diagnostics = recon.diagnostics()
    assert set(diagnostics) == {"cg/damping", "cg/iterations", "cg/relative_residual"}
    assert diagnostics["cg/iterations"] >= 1 and diagnostics["cg/relative_residual"] <= 1e-5
    _check_vocabulary(diagnostics)


@pytest.mark.parametrize("recon_class, solver", [(L1WaveletRecon, "fista"), (TVRecon, "pdhg")])
def test_sparsity_diagnostics(recon_class, solver):
    y = torch.randn(2, 1, 8, 8, dtype=torch.complex64, generator=torch.Generator().manual_seed(0))
    recon = recon_class(lamda=0.01, learn_lamda=True, max_iter=3)
    assert recon.diagnostics() == pytest.approx({f"{solver}/lamda": 0.01})
    recon(y, IdentitySystem())
    diagnostics = recon.diagnostics()
    assert set(diagnostics) == {
        f"{solver}/{quantity}"
        for quantity in ("lamda", "objective", "iterations", "relative_residual")
    }
    _check_vocabulary(diagnostics)


def test_modl_with_identity_prior_converges_to_least_squares():
    """D = identity: MoDL's iteration x <- (A^H A + lam I)^{-1}(A^H y + lam x) is the proximal
    point method, whose fixed point is the least-squares solution (CG-SENSE with lam -> 0).

    Poorly conditioned directions contract by lam / (s^2 + lam) per iteration: 10 iterations left
    up to 1.3e-2 over 30 random systems, 40 leave below 1e-5 on all of them."""
    system, y, _ = _mri(batch=1, dtype=torch.complex128)
    recon = MoDL(
        Identity(), num_iterations=40, damping=0.01, cg_max_iter=30, cg_tol=1e-12, magnitude=False
    ).double()
    with torch.no_grad():
        reference = CGSense(damping=1e-9, tol=1e-12, max_iter=500, magnitude=False)(y, system)
        x = recon(y, system)
    assert float((system(x) - y).norm() / y.norm()) < 1e-3
    # both are least-squares solutions started in the range of A^H: the same minimum-norm one
    assert float((x - reference).norm() / reference.norm()) < 1e-3


def test_modl_shared_and_per_iteration_weights():
    denoiser = ResNetDenoiser(in_chans=2, num_layers=3, chans=4)
    shared = MoDL(denoiser, num_iterations=3, share_weights=True)
    separate = MoDL(ResNetDenoiser(in_chans=2, num_layers=3, chans=4), 3, share_weights=False)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(separate) == 3 * count(shared)
    system, y, x = _mri()
    out = separate(y, system)
    assert out.shape == (2, 1, *x.shape[-2:]) and not out.is_complex()
    (out - x.abs()).square().mean().backward()
    for step in separate.unrolled.iterations:  # every iteration's lam and D get a gradient
        assert step.data_consistency.log_damping.grad is not None
        assert all(p.grad is not None for p in step.prior.parameters())
    assert set(separate.diagnostics()) == {"cg/damping", "cg/iterations", "cg/relative_residual"}
    _check_vocabulary(separate.diagnostics())


def test_unrolled_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    system, y, x = _mri(dtype=torch.complex128)
    iteration = ModlIteration(
        ResNetDenoiser(in_chans=2, num_layers=3, chans=4).double().eval(),
        ProximalDataConsistency(max_iter=5),
    ).double()
    grads = []
    for checkpointed in (False, True):
        unrolled = Unrolled(iteration, 3, checkpoint_iterations=checkpointed)
        iteration.zero_grad()
        adjoint_y = system.adjoint(y)
        unrolled(adjoint_y, adjoint_y, system.normal).abs().sum().backward()
        grads.append([p.grad.clone() for p in iteration.parameters()])
    for plain, checkpointed in zip(*grads, strict=True):
        torch.testing.assert_close(plain, checkpointed)


def test_positive_weights_are_enforced():
    for bad in (0.0, -0.1):
        with pytest.raises(ValueError, match="damping must be a number > 0"):
            ProximalDataConsistency(damping=bad)
        with pytest.raises(ValueError, match="damping must be a number > 0"):
            CGSense(damping=bad)
        with pytest.raises(ValueError, match="damping must be a number > 0"):
            MoDL(Identity(), damping=bad)
        with pytest.raises(ValueError, match="step_size must be a number > 0"):
            GradientDescentStep(step_size=bad)
    with pytest.raises(ValueError, match="num_iterations must be >= 1"):
        MoDL(Identity(), num_iterations=0)
    with pytest.raises(ValueError, match="iteration must be"):
        DEQ(Identity(), iteration="admm")
    # a learned weight stays positive whatever the optimizer does to its logarithm
    block = ProximalDataConsistency(damping=0.05)
    with torch.no_grad():
        block.log_damping -= 100
    assert float(block.damping) > 0


@pytest.mark.parametrize("iteration", ["proximal_gradient", "modl"])
def test_deq_recon_trains_and_reports_its_solves(iteration):
    torch.manual_seed(0)
    denoiser = DnCNN(in_chans=2, num_layers=3, chans=4, batch_norm=False, residual=False)
    recon = DEQ(denoiser, iteration=iteration, tol=1e-3, max_iter=60, spectral_norm=True)
    system, y, x = _mri()
    out = recon(y, system)
    assert out.shape == (2, 1, *x.shape[-2:])
    (out - x.abs()).square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in denoiser.parameters())
    stats = recon.diagnostics()
    assert stats["deq/iterations"] >= 1 and stats["deq/backward_iterations"] >= 1
    assert stats["deq/relative_residual"] <= 1e-3
    assert stats["deq/backward_relative_residual"] <= 1e-3
    weight = "gradient_step/step_size" if iteration == "proximal_gradient" else "cg/damping"
    assert weight in stats
    _check_vocabulary(stats)


def test_bias_free_denoiser_is_homogeneous():
    denoiser = Denoiser(BiasFreeDnCNN(in_chans=1, num_layers=4, chans=8)).eval()
    y = torch.rand(2, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(denoiser(3.5 * y), 3.5 * denoiser(y), rtol=1e-5, atol=1e-6)
    assert torch.equal(NoisyInput()(y), y)
    residual = Denoiser(Identity(), residual=True)
    torch.testing.assert_close(residual(y), 2 * y)


def test_super_resolution_recons():
    system = Downsampling(4)
    hr = torch.rand(2, 1, 32, 24)
    lr = system(hr)
    bicubic = Interpolation()(lr, system)
    torch.testing.assert_close(bicubic, upsample_bicubic(lr, 4))
    assert Interpolation(scale=2)(lr).shape == (2, 1, 16, 12)
    rcan = RCAN(in_chans=1, out_chans=1, chans=4, num_groups=1, num_blocks=1, reduction=2, scale=4)
    assert SuperResolution(rcan)(lr, system).shape == hr.shape
    same_size = SuperResolution(Identity(), upsample_input=True, residual=True)
    torch.testing.assert_close(same_size(lr, system), 2 * bicubic)
    with pytest.raises(ValueError, match="integer .factor"):
        Interpolation()(lr, None)
    with pytest.raises(ValueError, match="high-resolution shape"):
        SuperResolution(Identity(), residual=True)(lr, system)


def test_upsample_bicubic_reproduces_linear_images_and_matches_pil_inside():
    ramp = torch.arange(12, dtype=torch.float64)[:, None] * 0.3 + torch.arange(9) * 0.7
    up = upsample_bicubic(ramp, 3)
    centres = (torch.arange(36, dtype=torch.float64) + 0.5) / 3 - 0.5
    expected = centres[:, None] * 0.3 + ((torch.arange(27) + 0.5) / 3 - 0.5) * 0.7
    inner = slice(6, -6)  # cubic convolution reproduces linear functions away from the borders
    torch.testing.assert_close(up[inner, inner], expected[inner, inner])
    torch.testing.assert_close(upsample_bicubic(torch.ones(5, 4), 4), torch.ones(20, 16))

    image = pytest.importorskip("PIL.Image")
    x = torch.rand(20, 17, dtype=torch.float64)
    pil = image.fromarray(x.numpy().astype("float32"), mode="F").resize((68, 80), image.BICUBIC)
    ours = upsample_bicubic(x, 4)[8:-8, 8:-8]
    torch.testing.assert_close(
        ours.float(),
        torch.from_numpy(__import__("numpy").asarray(pil))[8:-8, 8:-8],
        rtol=0,
        atol=1e-6,
    )


def test_post_processing_normalises_and_restores_the_scale():
    system, y, _ = _mri()
    zero_filled = ZeroFilled()(y, system)
    torch.testing.assert_close(PostProcessing(Identity())(y, system), zero_filled)
    unet = Unet(in_chans=1, out_chans=1, chans=4, num_pool_layers=1)
    recon = PostProcessing(unet).eval()
    with torch.no_grad():  # normalisation makes the output follow the input's scale
        torch.testing.assert_close(
            recon(10 * y, system), 10 * recon(y, system), rtol=1e-4, atol=1e-4
        )
    torch.testing.assert_close(rss(zero_filled, dim=1, keepdim=True), zero_filled)


def _tiny_varnet():
    return VarNet(num_cascades=1, chans=2, num_pool_layers=1, sens_chans=2, sens_num_pool_layers=1)


def test_refinement_freezes_and_loads_its_first_stage(tmp_path):
    torch.manual_seed(0)
    system, y, _ = _mri(batch=1)
    system = MultiCoilMRI(system.coil_maps, torch.ones(1, 1, 1, system.coil_maps.shape[-1]))
    y = system(torch.randn(1, 1, *system.coil_maps.shape[-2:], dtype=torch.complex64))
    trained = _tiny_varnet()
    checkpoint = tmp_path / "varnet.ckpt"  # the layout of a Lightning checkpoint of ReconModule
    torch.save(
        {"state_dict": {f"recon.{k}": v for k, v in trained.state_dict().items()}}, checkpoint
    )

    rcan = RCAN(in_chans=1, out_chans=1, chans=4, num_groups=1, num_blocks=1, reduction=2, scale=1)
    hybrid = Refinement(_tiny_varnet(), rcan, freeze_recon=True, recon_checkpoint=str(checkpoint))
    for name, tensor in trained.state_dict().items():
        torch.testing.assert_close(hybrid.recon.state_dict()[name], tensor)
    hybrid.train()
    assert not hybrid.recon.training and hybrid.model.training
    out = hybrid(y, system)
    out.sum().backward()
    assert all(p.grad is None and not p.requires_grad for p in hybrid.recon.parameters())
    assert all(p.grad is not None for p in hybrid.model.parameters())
    with torch.no_grad():
        torch.testing.assert_close(out - hybrid.model(trained(y, system)), trained(y, system))

    wider = VarNet(num_cascades=1, chans=4, num_pool_layers=1, sens_chans=2, sens_num_pool_layers=1)
    with pytest.raises(ValueError, match=r"varnet.ckpt.*shape mismatch.*use the same architecture"):
        Refinement(wider, rcan, recon_checkpoint=str(checkpoint))
    with pytest.raises(UserError, match="recon_checkpoint: .*nope.ckpt: no such file"):
        Refinement(_tiny_varnet(), rcan, recon_checkpoint=str(tmp_path / "nope.ckpt"))


def test_refinement_stacks_extra_inputs_and_ensembles_the_network_at_test_time():
    """The SNU design: the network sees the VarNet image and a classical image as two channels;
    at test time it is averaged over the 8 flips/rotations of that input."""
    from deepinv_lab.models.wrappers import self_ensemble

    torch.manual_seed(0)
    system, y, _ = _mri(batch=2)
    system = MultiCoilMRI(system.coil_maps, torch.ones(1, 1, 1, system.coil_maps.shape[-1]))
    y = system(torch.randn(2, 1, *system.coil_maps.shape[-2:], dtype=torch.complex64))
    rcan = RCAN(in_chans=2, out_chans=1, chans=4, num_groups=1, num_blocks=1, reduction=2, scale=1)
    hybrid = Refinement(_tiny_varnet(), rcan, extra_inputs=[ZeroFilled()], self_ensemble="x8")
    first = hybrid.recon(y, system)
    stacked = torch.cat([first, ZeroFilled()(y, system)], dim=1)
    hybrid.train()
    torch.testing.assert_close(hybrid(y, system), first + rcan(stacked))
    hybrid.eval()
    with torch.no_grad():
        expected = first + self_ensemble(rcan, stacked, mode="x8")
        torch.testing.assert_close(hybrid(y, system), expected)
        assert not torch.allclose(expected, first + rcan(stacked))
    with pytest.raises(UserError, match="extra_inputs must be Recons"):
        Refinement(_tiny_varnet(), rcan, extra_inputs=[rcan])
    with pytest.raises(UserError, match="self_ensemble must be 'x2' or 'x8'"):
        Refinement(_tiny_varnet(), rcan, self_ensemble="x4")


def test_normalized_recons_are_scale_equivariant():
    """Normalized runs the Recon at the scale of |A^H y| ~ 1: a MoDL with biases becomes
    scale-equivariant (fastMRI k-space is ~1e-5 of the built-in data), a linear Recon is
    unchanged, and the scale comes from the measurements alone."""
    from deepinv_lab.recons import Normalized

    torch.manual_seed(0)
    system, y, _ = _mri(batch=2)
    denoiser = ResNetDenoiser(in_chans=2, num_layers=2, chans=4)
    modl = MoDL(denoiser, num_iterations=2, damping=0.1, cg_max_iter=5)
    normalized = Normalized(modl)
    with torch.no_grad():
        small = normalized(1e-5 * y, system)
        torch.testing.assert_close(small, 1e-5 * normalized(y, system), rtol=1e-4, atol=1e-10)
        assert not torch.allclose(modl(1e-5 * y, system), 1e-5 * modl(y, system), rtol=1e-3)
        scale = normalized.scale(y, system)
        torch.testing.assert_close(scale.flatten(), system.adjoint(y).abs().flatten(1).amax(1))
        cg = CGSense(damping=0.1, tol=1e-7, max_iter=200, on_failure="ignore")
        torch.testing.assert_close(Normalized(cg)(y, system), cg(y, system), rtol=1e-4, atol=1e-5)
        robust = Normalized(cg, statistic="adjoint_quantile", quantile=0.9)
        torch.testing.assert_close(robust(3 * y, system), 3 * cg(y, system), rtol=1e-4, atol=1e-5)
    with pytest.raises(UserError, match="statistic must be one of"):
        Normalized(cg, statistic="max")


def test_super_resolution_self_ensemble_outside_training():
    from deepinv_lab.models import RCAN
    from deepinv_lab.models.wrappers import SelfEnsemble
    from deepinv_lab.recons import SuperResolution
    from deepinv_lab.systems.downsampling import Downsampling

    torch.manual_seed(0)
    network = RCAN(1, 1, chans=8, num_groups=1, num_blocks=1, reduction=4, scale=2)
    recon = SuperResolution(network, residual=True, self_ensemble="x8")
    system, y = Downsampling(2), torch.rand(2, 1, 8, 8)
    plain = SuperResolution(network, residual=True)
    recon.train()
    torch.testing.assert_close(recon(y, system), plain(y, system))  # training: no ensemble
    recon.eval()
    with torch.no_grad():
        expected = SelfEnsemble(plain, "x8")(y, system)
        torch.testing.assert_close(recon(y, system), expected)
        # the ensemble is equivariant to the transforms it averages over
        torch.testing.assert_close(recon(y.flip(-1), system), recon(y, system).flip(-1))
        rotated = recon(torch.rot90(y, 1, (-2, -1)), system)
        torch.testing.assert_close(rotated, torch.rot90(recon(y, system), 1, (-2, -1)))
    with pytest.raises(ValueError, match="self_ensemble"):
        SuperResolution(network, self_ensemble="x4")
