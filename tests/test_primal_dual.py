"""Learned primal-dual (Adler & Öktem 2018) on multicoil MRI and on image-domain Systems."""

import pytest
import torch

from deepinv_lab.errors import UserError
from deepinv_lab.recons import LearnedPrimalDual
from deepinv_lab.systems.cs import CompressedSensing
from deepinv_lab.systems.downsampling import Downsampling
from deepinv_lab.systems.masking import Inpainting, random_pixel_mask
from deepinv_lab.systems.mri import MultiCoilMRI
from deepinv_lab.systems.noise import GaussianNoise
from deepinv_lab.systems.nufft.operator import MultiCoilNUFFT

#: tiny convolutions run many times slower with two threads on the loaded 2-core machine
pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(num_iterations=2, primal_memory=2, dual_memory=2, chans=4)


def _mri(batch=2, seed=0):
    system, _ = MultiCoilMRI.example(batch_size=batch)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(
        batch, 1, *system.coil_maps.shape[-2:], dtype=torch.complex64, generator=generator
    )
    return system, system(x), x


def _inpainting(batch=2, size=(12, 10), seed=0):
    generator = torch.Generator().manual_seed(seed)
    system = Inpainting(random_pixel_mask((batch, 1, *size), 0.5, generator))
    x = torch.rand(batch, 1, *size, generator=generator)
    return system, system(x), x


def _mri_recon(y, **kwargs):
    return LearnedPrimalDual(image_chans=2, measurement_chans=2 * y.shape[1], **{**TINY, **kwargs})


def test_shapes_and_dtypes_on_multicoil_mri():
    torch.manual_seed(0)
    system, y, x = _mri()
    recon = _mri_recon(y)
    recon.check_system(system, y)
    out = recon(y, system)
    assert out.shape == x.shape and out.dtype == torch.float32 and torch.isfinite(out).all()
    complex_out = _mri_recon(y, magnitude=False)(y, system)
    assert complex_out.shape == x.shape and complex_out.dtype == torch.complex64
    estimate = recon.measurement_estimate(y, system)
    assert estimate.shape == y.shape and estimate.is_complex()


@pytest.mark.parametrize("primal_init", ["zeros", "adjoint"])
def test_shapes_on_image_systems(primal_init):
    torch.manual_seed(0)
    system, y, x = _inpainting()
    recon = LearnedPrimalDual(1, 1, primal_init=primal_init, **TINY)
    recon.check_system(system, y)
    out = recon(y, system)
    assert out.shape == x.shape and out.dtype == torch.float32
    # measurements smaller than the image: the dual memory lives on the coarse grid
    down, x = Downsampling.example(dtype=torch.float32)
    recon = LearnedPrimalDual(x.shape[1], x.shape[1], primal_init=primal_init, **TINY)
    recon.check_system(down, down(x))
    assert recon(down(x), down).shape == x.shape


def test_primal_init_decides_the_starting_point():
    """With every update network's last layer zeroed, nothing moves: the output is the start."""
    system, y, _ = _inpainting()
    for primal_init, expected in (("adjoint", system.adjoint(y)), ("zeros", torch.zeros_like(y))):
        recon = LearnedPrimalDual(1, 1, primal_init=primal_init, **TINY)
        for network in [*recon.primal_updates, *recon.dual_updates]:
            torch.nn.init.zeros_(network.layers[-1].weight)
            torch.nn.init.zeros_(network.layers[-1].bias)
        torch.testing.assert_close(recon(y, system), expected)


@pytest.mark.parametrize("kind", ["mri", "inpainting"])
def test_a_sample_does_not_depend_on_its_batch(kind):
    torch.manual_seed(0)
    if kind == "mri":
        system, y, _ = _mri()
        alone = MultiCoilMRI(system.coil_maps[:1], system.mask[:1])
        recon = _mri_recon(y)
    else:
        system, y, _ = _inpainting()
        alone = Inpainting(system.mask[:1])
        recon = LearnedPrimalDual(1, 1, **TINY)
    with torch.no_grad():
        torch.testing.assert_close(recon(y, system)[:1], recon(y[:1], alone))


@pytest.mark.parametrize("share_weights", [False, True])
def test_gradients_reach_every_parameter(share_weights):
    torch.manual_seed(0)
    system, y, x = _mri()
    recon = _mri_recon(y, num_iterations=3, share_weights=share_weights)
    assert len(recon.primal_updates) == len(recon.dual_updates) == (1 if share_weights else 3)
    (recon(y, system) - x.abs()).square().mean().backward()
    for name, parameter in recon.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all() and parameter.grad.abs().sum() > 0, name
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    shared = _mri_recon(y, num_iterations=3, share_weights=True)
    assert count(_mri_recon(y, num_iterations=3)) == 3 * count(shared)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_iterations=0), "num_iterations must be an integer >= 1, got 0"),
        (dict(num_iterations=True), "num_iterations must be an integer >= 1"),
        (dict(num_iterations=2.5), "num_iterations must be an integer >= 1"),
        (dict(image_chans=0), "image_chans must be an integer >= 1"),
        (dict(measurement_chans=-1), "measurement_chans must be an integer >= 1"),
        (dict(primal_memory=0), "primal_memory must be an integer >= 1"),
        (dict(dual_memory=0), "dual_memory must be an integer >= 1"),
        (dict(chans=0), "chans must be an integer >= 1"),
        (dict(num_layers=1), "num_layers must be an integer >= 2"),
        (dict(primal_init="fbp"), "primal_init must be one of zeros, adjoint, got 'fbp'"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, match):
    with pytest.raises(UserError, match=f"LearnedPrimalDual: {match}"):
        LearnedPrimalDual(**kwargs)


def test_systems_it_cannot_use_are_refused_clearly():
    recon = LearnedPrimalDual(2, 6, **TINY)
    nufft, x = MultiCoilNUFFT.example()
    y = nufft(x)
    with pytest.raises(UserError, match=r"image-like measurements.*MultiCoilNUFFT.*\(2, 3, 144\)"):
        recon.check_system(nufft, y)
    cs, x = CompressedSensing.example(dtype=torch.float32)
    with pytest.raises(UserError, match=r"CompressedSensing gives measurements of shape \(2, 17\)"):
        LearnedPrimalDual(2, 1, **TINY).check_system(cs, cs(x))
    with pytest.raises(UserError, match="needs a linear System"):
        recon.check_system(GaussianNoise(0.1), torch.randn(2, 1, 8, 8))
    system, y, _ = _mri()  # 4 coils: 8 real channels of k-space, 2 of the image
    with pytest.raises(
        UserError, match="measurement_chans is 6.*MultiCoilMRI.*set measurement_chans to 8"
    ):
        recon.check_system(system, y)
    with pytest.raises(UserError, match="image_chans is 1.*set image_chans to 2"):
        LearnedPrimalDual(1, 8, **TINY).check_system(system, y)
    with pytest.raises(UserError, match="measurement_chans is 6"):  # Python callers, too
        recon(y, system)


def _smooth_images(count, size, generator):
    """Random smooth images: coarse noise upsampled bilinearly."""
    coarse = torch.rand(count, 1, size // 4, size // 4, generator=generator)
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear")


def test_training_beats_the_adjoint_baseline():
    """200 Adam steps on smooth 16 x 16 images with 60% of the pixels missing: the learned
    reconstruction of held-out images beats the adjoint ``A^H y`` (the observed pixels, zero
    elsewhere) by far (its error was 2% of the adjoint's)."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    train, test = _smooth_images(64, 16, generator), _smooth_images(16, 16, generator)

    def draw(images):
        system = Inpainting(random_pixel_mask((len(images), 1, 16, 16), 0.4, generator))
        return system, system(images)

    recon = LearnedPrimalDual(1, 1, num_iterations=3, primal_memory=2, dual_memory=2, chans=8)
    optimizer = torch.optim.Adam(recon.parameters(), lr=3e-3)
    for _ in range(200):
        batch = train[torch.randint(0, len(train), (4,), generator=generator)]
        system, y = draw(batch)
        loss = (recon(y, system) - batch).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    system, y = draw(test)
    with torch.no_grad():
        learned = float((recon(y, system) - test).square().mean())
    adjoint = float((system.adjoint(y) - test).square().mean())
    assert learned < 0.1 * adjoint, (learned, adjoint)
