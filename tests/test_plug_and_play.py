"""ADMM/HQS, RED and plug-and-play: closed forms (a Tikhonov prior, a linear denoiser), the noise
schedule the denoiser is told, complex and multi-channel images, denoisers loaded from ``fit``
and ``prune`` checkpoints, and the bad input of each."""

from pathlib import Path

import pytest
import torch
from torch import nn

from deepinv_lab.cli import main
from deepinv_lab.errors import UserError
from deepinv_lab.optim.fista import fista
from deepinv_lab.optim.least_squares import least_squares
from deepinv_lab.optim.red import red_gradient
from deepinv_lab.optim.splitting import admm
from deepinv_lab.recons import RED, L1WaveletRecon, PlugAndPlay, TrainedDenoiser
from deepinv_lab.recons.plug_and_play import denoise
from deepinv_lab.systems import Inpainting, MultiCoilMRI
from deepinv_lab.systems.noise import GaussianNoise
from tests.test_prune_command import prune, trained
from tests.test_sparsity import multicoil_problem

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def mri() -> tuple[MultiCoilMRI, torch.Tensor]:
    torch.manual_seed(0)
    system, x = MultiCoilMRI.example(batch_size=2, dtype=torch.complex128)
    return system, system(x)


def _close(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().norm() / b.abs().norm())


def test_admm_with_a_tikhonov_prior_converges_to_the_regularised_least_squares(mri):
    system, y = mri
    mu = 0.3
    exact, _ = least_squares(system, y, damping=mu, tol=1e-12, max_iter=500)

    def prox(v, step):  # of step * mu/2 ||x||^2
        return v / (1 + step * mu)

    x, z, info = admm(system, y, prox, [1.0] * 200, cg_tol=1e-12, cg_max_iter=100)
    assert _close(z, exact) < 1e-6 and _close(x, exact) < 1e-6
    assert 10 < int(info.iterations.min()) <= 200  # tol = 0: stops once nothing changes
    assert float(info.primal_residual.max()) < 1e-6


def test_admm_and_fista_reach_the_same_l1_wavelet_minimiser():
    problem = multicoil_problem()
    system, y = MultiCoilMRI(problem["coil_maps"], problem["mask"]), problem["y"]
    recon = L1WaveletRecon(lamda=0.05, levels=1, max_iter=3000)
    by_fista, _ = fista(system, y, recon.proximal, max_iter=3000)
    _, by_admm, _ = admm(system, y, recon.proximal, [0.5] * 400, cg_tol=1e-12, cg_max_iter=100)
    assert _close(by_admm, by_fista) < 1e-4


def test_admm_stops_a_sample_once_it_has_converged():
    problem = multicoil_problem()
    system, y = MultiCoilMRI(problem["coil_maps"], problem["mask"]), problem["y"]
    recon = L1WaveletRecon(lamda=0.05, levels=1)
    _, z, info = admm(system, y, recon.proximal, [0.5] * 300, tol=1e-5)
    assert bool(info.converged.all()) and int(info.iterations.max()) < 300


def test_red_fixed_point_and_gradient_forms_reach_the_closed_form_of_a_linear_denoiser(mri):
    """With ``D(x) = c x`` RED's objective is ``1/2||Ax - y||^2 + rho (1 - c)/2 ||x||^2``."""
    system, y = mri
    c, rho = 0.6, 0.5
    exact, _ = least_squares(system, y, damping=rho * (1 - c), tol=1e-12, max_iter=500)
    by_gradient, info = red_gradient(system, y, lambda v: c * v, rho, max_iter=3000, tol=1e-13)
    assert _close(by_gradient, exact) < 1e-8 and bool(info.converged.all())
    x, _, _ = admm(system, y, lambda v, s: c * v, [rho] * 300, dual=False, cg_tol=1e-12,
                   cg_max_iter=100)  # fmt: skip
    assert _close(x, exact) < 1e-8


class _Scaling(nn.Module):
    """A 1-channel 'denoiser' ``D(x, sigma) = x / (1 + sigma)`` that records the levels."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1, bias=False)
        self.levels: list[torch.Tensor] = []

    def forward(self, x, sigma):
        self.levels.append(sigma.detach().clone())
        return x / (1 + sigma.reshape(-1, 1, 1, 1))


def test_the_denoiser_is_told_dpirs_decreasing_noise_levels(mri):
    system, y = mri
    denoiser = _Scaling()
    recon = PlugAndPlay(denoiser, num_iterations=5, noise_level=0.05, sigma_max=0.2)
    recon(y, system)
    expected = recon.noise_levels()
    assert len(denoiser.levels) == 5
    for level, sigma in zip(denoiser.levels, expected, strict=True):
        # complex images: real and imaginary parts of both samples, one forward
        assert level.shape == (4,)
        torch.testing.assert_close(level, torch.full((4,), float(sigma), dtype=level.dtype))
    assert float(expected[0]) == pytest.approx(0.2) and float(expected[-1]) == pytest.approx(0.05)
    assert bool((expected[1:] < expected[:-1]).all())
    torch.testing.assert_close(recon.penalties(), 0.23 * 0.05**2 / expected**2)
    assert set(recon.diagnostics()) == {
        "pnp/iterations", "pnp/relative_residual", "pnp/primal_residual", "pnp/cg_iterations",
    }  # fmt: skip


def test_denoise_folds_complex_parts_and_channels_into_the_batch():
    calls = []

    class OneChannel(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)

        def forward(self, x):
            calls.append(tuple(x.shape))
            return self.conv(x)

    model = OneChannel()
    x = torch.randn(2, 3, 8, 8, dtype=torch.complex64)
    out = denoise(model, x, torch.ones(2))
    assert calls == [(12, 1, 8, 8)]
    expected = torch.complex(
        model.conv(x.real.reshape(6, 1, 8, 8)), model.conv(x.imag.reshape(6, 1, 8, 8))
    ).reshape(x.shape)
    torch.testing.assert_close(out, expected)


def test_pnp_and_red_reconstruct_each_sample_as_if_it_were_alone():
    torch.manual_seed(1)
    system, x = Inpainting.example(batch_size=3, dtype=torch.float64)
    y = system(x.real if x.is_complex() else x)
    denoiser = nn.Conv2d(1, 1, 3, padding=1, bias=False).double()
    for recon in (PlugAndPlay(denoiser, method="admm", num_iterations=4),
                  RED(denoiser, form="gradient", num_iterations=5),
                  RED(denoiser, num_iterations=3)):  # fmt: skip
        with torch.no_grad():
            batch = recon(y, system)
            single = recon(y[1:2], Inpainting(system.mask[1:2]))
        torch.testing.assert_close(batch[1:2], single)


def test_bad_arguments_and_systems_give_one_clear_line(mri):
    denoiser = nn.Conv2d(1, 1, 3, padding=1)
    with pytest.raises(UserError, match="noise_level must be a number > 0"):
        PlugAndPlay(denoiser, noise_level=0)
    with pytest.raises(UserError, match="sigma_min .* must be at most sigma_max"):
        PlugAndPlay(denoiser, sigma_min=0.5, sigma_max=0.1)
    with pytest.raises(UserError, match="method must be 'hqs' or 'admm'"):
        PlugAndPlay(denoiser, method="fista")
    with pytest.raises(UserError, match="lamda must be a number > 0"):
        RED(denoiser, lamda=-1.0)
    with pytest.raises(UserError, match="penalties rho must be finite and > 0"):
        admm(mri[0], mri[1], lambda v, s: v, [1.0, 0.0])
    with pytest.raises(UserError, match="step must be a number > 0"):
        red_gradient(mri[0], mri[1], lambda v: v, 1.0, step=-0.1)
    with pytest.raises(UserError, match="needs a linear System with an adjoint"):
        PlugAndPlay(denoiser).check_system(GaussianNoise(0.1), torch.zeros(1, 1, 8, 8))
    system, y = mri
    with pytest.raises(UserError, match=r"the denoiser takes 3 channels and the images are"):
        PlugAndPlay(nn.Conv2d(3, 3, 3)).check_system(system, y)


@pytest.fixture(scope="module")
def denoiser_checkpoint(tmp_path_factory) -> Path:
    return trained("bfcnn_denoise", tmp_path_factory.mktemp("bfcnn"))


def test_a_trained_denoiser_is_rebuilt_from_its_checkpoint_alone(denoiser_checkpoint):
    loaded = TrainedDenoiser(str(denoiser_checkpoint))
    state = torch.load(denoiser_checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    for name, value in loaded.denoiser.state_dict().items():
        torch.testing.assert_close(value, state[f"recon.{name}"])
    assert not any(p.requires_grad for p in loaded.parameters())
    loaded.train()
    assert not loaded.denoiser.training  # frozen batch norm statistics
    x = torch.rand(2, 1, 16, 16)
    torch.testing.assert_close(loaded(x, sigma=torch.ones(2)), loaded.denoiser(x))


def test_a_pruned_denoiser_checkpoint_loads_with_its_smaller_architecture(
    denoiser_checkpoint, tmp_path
):
    out = tmp_path / "pruned"
    assert prune("bfcnn_denoise", denoiser_checkpoint, out, "--prune.ratio=0.5") == 0
    pruned = out / "ratio_0.50" / "pruned.ckpt"
    small = TrainedDenoiser(str(pruned))
    full = TrainedDenoiser(str(denoiser_checkpoint))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(small) < count(full)
    assert small(torch.rand(1, 1, 16, 16)).shape == (1, 1, 16, 16)


def test_a_checkpoint_that_is_not_a_denoiser_is_refused_by_name(tmp_path):
    checkpoint = trained("proxgrad", tmp_path)
    with pytest.raises(UserError, match=r"TrainedDenoiser checkpoint: .*last.ckpt: it holds a "
                       r"UnrolledProximalGradient Recon, not a Denoiser"):  # fmt: skip
        TrainedDenoiser(str(checkpoint))
    with pytest.raises(UserError, match="TrainedDenoiser checkpoint: .*: no such file"):
        TrainedDenoiser(str(tmp_path / "missing.ckpt"))


def test_pnp_from_a_fit_checkpoint_runs_through_the_cli(denoiser_checkpoint, tmp_path):
    """fit evaluates a PnP config: nothing to train, the denoiser comes from the checkpoint."""
    from tests.test_configs import TINY

    args = ["fit", "--config", "configs/pnp_inpainting.json", *TINY["pnp_inpainting"],
            f"--model.init_args.recon.init_args.denoiser.init_args.checkpoint={denoiser_checkpoint}",
            f"--trainer.logger.init_args.save_dir={tmp_path}", "--trainer.max_steps=1",
            "--trainer.limit_val_batches=1"]  # fmt: skip
    assert main(args) == 0


def test_diagnostics_are_in_the_vocabulary(mri):
    from tests.test_recons import DIAGNOSTICS

    system, y = mri
    denoiser = nn.Conv2d(1, 1, 3, padding=1, bias=False).double()
    for recon in (PlugAndPlay(denoiser, num_iterations=2), RED(denoiser, num_iterations=2),
                  RED(denoiser, form="gradient", num_iterations=2)):  # fmt: skip
        with torch.no_grad():
            recon(y, system)
        assert all(DIAGNOSTICS.fullmatch(key) for key in recon.diagnostics())


def test_reflection_padding_is_undone_exactly():
    model = nn.Conv2d(1, 1, 3, padding=1, bias=False)
    x = torch.randn(2, 1, 12, 10, dtype=torch.complex64)
    padded = torch.complex(
        *(torch.nn.functional.pad(p, (4, 4, 4, 4), mode="reflect") for p in (x.real, x.imag))
    )
    expected = denoise(model, padded, torch.ones(2))[..., 4:-4, 4:-4]
    torch.testing.assert_close(denoise(model, x, torch.ones(2), pad=4), expected)
