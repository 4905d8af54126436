"""Noise blocks: statistics against their definitions, per-sample levels, reproducibility and
errors."""

import math

import pytest
import torch

from deepinv_lab.systems.base import System
from deepinv_lab.systems.noise import (
    ComplexGaussianNoise,
    GaussianNoise,
    PoissonNoise,
    RandomSigmaGaussianNoise,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("cls", [GaussianNoise, ComplexGaussianNoise, PoissonNoise])
def test_noise_blocks_are_systems_with_buffers(cls):
    block = cls(0.5)
    assert isinstance(block, System)
    assert len(dict(block.named_buffers())) >= 1


def test_gaussian_noise_real_std_matches_sigma():
    y = torch.randn(4, 1, 200, 250, dtype=torch.float64, generator=_gen(1))
    noisy = GaussianNoise(0.3)(y, generator=_gen(2))
    assert noisy.dtype == y.dtype and noisy.shape == y.shape
    noise = noisy - y
    assert abs(noise.std().item() / 0.3 - 1) < 0.01
    assert abs(noise.mean().item()) < 0.003


def test_gaussian_noise_on_complex_data_is_circular_with_power_sigma_squared():
    y = torch.zeros(2, 1, 300, 300, dtype=torch.complex64)
    noise = GaussianNoise(0.2)(y, generator=_gen(3))
    assert noise.dtype == torch.complex64
    assert abs(noise.abs().square().mean().item() / 0.2**2 - 1) < 0.01
    for part in (noise.real, noise.imag):
        assert abs(part.std().item() / (0.2 / math.sqrt(2)) - 1) < 0.01
    assert abs(torch.mean(noise.real * noise.imag).item()) < 1e-4


def test_gaussian_noise_per_sample_sigma():
    sigma = torch.tensor([0.0, 0.1, 1.0])
    y = torch.zeros(3, 2, 100, 100)
    noise = GaussianNoise(sigma)(y, generator=_gen(4))
    assert torch.all(noise[0] == 0)
    stds = noise.flatten(1).std(dim=1)
    torch.testing.assert_close(stds[1:], sigma[1:], rtol=0.02, atol=0)
    # per-sample sigma also fits data of another rank, e.g. CS measurements (B, m)
    assert GaussianNoise(sigma)(torch.zeros(3, 50)).shape == (3, 50)


def test_gaussian_noise_is_reproducible_with_a_generator():
    y = torch.randn(2, 1, 8, 8)
    noise = GaussianNoise(0.1)
    torch.testing.assert_close(noise(y, generator=_gen(5)), noise(y, generator=_gen(5)))
    assert not torch.equal(noise(y, generator=_gen(5)), noise(y, generator=_gen(6)))


def test_gaussian_noise_errors():
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        GaussianNoise(-0.1)
    with pytest.raises(ValueError, match=r"\(3,\).*\(2, 1, 4, 4\)"):
        GaussianNoise(torch.ones(3))(torch.zeros(2, 1, 4, 4))
    with pytest.raises(TypeError, match="floating-point"):
        GaussianNoise(0.1)(torch.zeros(2, 3, dtype=torch.int64))


def test_complex_gaussian_noise_keeps_its_sigma_api():
    y = torch.zeros(2, 3, 100, 100, dtype=torch.complex64)
    noise = ComplexGaussianNoise(0.05)
    noisy = noise(y, generator=_gen(7))
    assert abs(noisy.abs().square().mean().item() / 0.05**2 - 1) < 0.02
    torch.testing.assert_close(noisy, noise(y, generator=_gen(7)))
    # the same draw as GaussianNoise: one convention for complex Gaussian noise
    torch.testing.assert_close(noisy, GaussianNoise(0.05)(y, generator=_gen(7)))
    with pytest.raises(TypeError, match="complex"):
        noise(torch.zeros(2, 3))


def test_complex_gaussian_noise_meets_the_snr_definition():
    signal = torch.randn(3, 2, 128, 128, dtype=torch.complex128, generator=_gen(8))
    signal = signal * torch.tensor([0.1, 1.0, 20.0], dtype=torch.float64).view(3, 1, 1, 1)
    snr_db = torch.tensor([0.0, 10.0, 30.0])
    noise_block = ComplexGaussianNoise(snr_db=snr_db)
    noise = noise_block(signal, generator=_gen(9)) - signal
    signal_power = signal.abs().square().mean(dim=(1, 2, 3))
    noise_power = noise.abs().square().mean(dim=(1, 2, 3))
    measured = 10 * torch.log10(signal_power / noise_power)
    torch.testing.assert_close(measured.float(), snr_db, atol=0.05, rtol=0)
    expected_sigma = signal_power.sqrt() * 10 ** (-snr_db.double() / 20)
    torch.testing.assert_close(noise_block.noise_sigma(signal).flatten(), expected_sigma)


def test_complex_gaussian_noise_scalar_snr_and_zero_signal():
    signal = torch.randn(2, 1, 64, 64, dtype=torch.complex64, generator=_gen(10))
    noise = ComplexGaussianNoise(snr_db=20.0)(signal, generator=_gen(11)) - signal
    ratio = signal.abs().square().mean() / noise.abs().square().mean()
    assert abs(10 * math.log10(ratio.item()) - 20.0) < 0.1
    zeros = torch.zeros(2, 1, 4, 4, dtype=torch.complex64)
    assert torch.equal(ComplexGaussianNoise(snr_db=20.0)(zeros), zeros)


def test_complex_gaussian_noise_needs_exactly_one_level():
    with pytest.raises(ValueError, match="exactly one of sigma and snr_db"):
        ComplexGaussianNoise()
    with pytest.raises(ValueError, match="exactly one of sigma and snr_db"):
        ComplexGaussianNoise(0.1, snr_db=10.0)
    with pytest.raises(ValueError, match=r"snr_db of shape \(3,\).*\(2, 1, 4, 4\)"):
        ComplexGaussianNoise(snr_db=torch.ones(3))(torch.ones(2, 1, 4, 4, dtype=torch.complex64))


def test_poisson_noise_mean_and_variance():
    gain = 4.0
    rates = torch.tensor([0.5, 2.0, 10.0], dtype=torch.float64).view(3, 1, 1, 1)
    x = rates.expand(3, 1, 200, 200).contiguous()
    y = PoissonNoise(gain)(x, generator=_gen(12))
    assert y.dtype == x.dtype and y.shape == x.shape
    counts = y * gain
    torch.testing.assert_close(counts, counts.round())  # photon counts are integers
    torch.testing.assert_close(y.mean(dim=(1, 2, 3)), rates.flatten(), rtol=0.01, atol=0)
    torch.testing.assert_close(y.var(dim=(1, 2, 3)), rates.flatten() / gain, rtol=0.03, atol=0)


def test_poisson_noise_per_sample_gain_and_reproducibility():
    gain = torch.tensor([1.0, 100.0])
    x = torch.full((2, 1, 150, 150), 3.0)
    noise = PoissonNoise(gain)
    y = noise(x, generator=_gen(13))
    torch.testing.assert_close(y.var(dim=(1, 2, 3)), 3.0 / gain, rtol=0.04, atol=0)
    torch.testing.assert_close(noise(x, generator=_gen(13)), y)


def test_poisson_noise_errors():
    with pytest.raises(ValueError, match=r"x >= 0.*-0\.5"):
        PoissonNoise(1.0)(torch.tensor([[1.0, -0.5]]))
    with pytest.raises(TypeError, match="real floating-point"):
        PoissonNoise(1.0)(torch.ones(1, 2, dtype=torch.complex64))
    with pytest.raises(ValueError, match="gain must be > 0"):
        PoissonNoise(0.0)


def test_random_sigma_noise_draws_per_sample_levels_in_range():
    noise = RandomSigmaGaussianNoise(0.05, 0.5)
    y = torch.zeros(64, 1, 40, 40)
    noisy, sigma = noise(y, generator=_gen(14), return_sigma=True)
    assert sigma.shape == (64,) and sigma.dtype == torch.float32
    assert torch.all((sigma >= 0.05) & (sigma <= 0.5))
    assert sigma.std() > 0.05  # drawn per sample, not one level for the batch
    assert torch.equal(noise.last_sigma, sigma)
    torch.testing.assert_close(noisy.flatten(1).std(dim=1), sigma, rtol=0.1, atol=0)
    # the drawn levels are uniform on the range: mean and spread of U[a, b]
    many = noise.sample_sigma(100_000, generator=_gen(15))
    assert abs(many.mean().item() - 0.275) < 0.003
    assert abs(many.std().item() - 0.45 / math.sqrt(12)) < 0.003


def test_random_sigma_noise_is_reproducible_and_handles_complex():
    noise = RandomSigmaGaussianNoise(0.1, 1.0)
    y = torch.randn(4, 2, 8, 8, dtype=torch.complex128)
    first, sigma1 = noise(y, generator=_gen(16), return_sigma=True)
    second, sigma2 = noise(y, generator=_gen(16), return_sigma=True)
    assert torch.equal(first, second) and torch.equal(sigma1, sigma2)
    assert first.dtype == torch.complex128 and sigma1.dtype == torch.float64
    assert isinstance(noise(y), torch.Tensor)
    assert "last_sigma" not in noise.state_dict()


def test_random_sigma_noise_errors():
    with pytest.raises(ValueError, match="sigma_min <= sigma_max"):
        RandomSigmaGaussianNoise(0.5, 0.1)
    with pytest.raises(ValueError, match="sigma_min <= sigma_max"):
        RandomSigmaGaussianNoise(-0.1, 0.1)
