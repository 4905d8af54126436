"""Image-domain Systems (inpainting, downsampling, compressed sensing) against independent
references: numpy block means, a numpy port of MATLAB imresize's bicubic weights, torch's
antialiased bicubic interpolation, explicit matrices."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deepinv_lab.systems.base import Composition, LinearSystem
from deepinv_lab.systems.cs import CompressedSensing
from deepinv_lab.systems.downsampling import Downsampling
from deepinv_lab.systems.masking import Inpainting, box_mask, random_pixel_mask
from deepinv_lab.systems.noise import GaussianNoise


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# (name, system builder, input shape): several factors, odd ones, and tiny images whose filter is
# longer than the image (the circular wrap goes round more than once).
CASES = [
    ("inpainting-shared", lambda: Inpainting(random_pixel_mask((3, 1, 6, 5), 0.4)), (3, 2, 6, 5)),
    ("inpainting-channels", lambda: Inpainting(random_pixel_mask((3, 2, 6, 5), 0.4)), (3, 2, 6, 5)),
    ("down-box-2", lambda: Downsampling(2, "box"), (3, 2, 8, 6)),
    ("down-box-3", lambda: Downsampling(3, "box"), (3, 1, 9, 6)),
    ("down-none-3", lambda: Downsampling(3, "none"), (3, 1, 9, 12)),
    ("down-bicubic-2", lambda: Downsampling(2, "bicubic"), (3, 2, 8, 10)),
    ("down-bicubic-3", lambda: Downsampling(3, "bicubic"), (3, 1, 12, 9)),
    ("down-bicubic-4-tiny", lambda: Downsampling(4, "bicubic"), (3, 1, 4, 8)),
    ("cs-real", lambda: CompressedSensing(13, (2, 3, 4), seed=1), (3, 2, 3, 4)),
    ("cs-complex", lambda: CompressedSensing(13, (2, 3, 4), 1, torch.complex64), (3, 2, 3, 4)),
]


@pytest.mark.parametrize(
    "dtype,tol",
    [
        (torch.float32, 1e-5),
        (torch.float64, 1e-12),
        (torch.complex64, 1e-5),
        (torch.complex128, 1e-12),
    ],
)
@pytest.mark.parametrize("name,build,shape", CASES, ids=[c[0] for c in CASES])
def test_adjointness_in_every_precision(name, build, shape, dtype, tol):
    system = build()
    x = torch.randn(shape, dtype=dtype, generator=_gen(1))
    if system(x).is_complex() and not dtype.is_complex:
        # a complex CS matrix maps real images to complex measurements: check A on C^n
        x = x.to(torch.complex128 if dtype == torch.float64 else torch.complex64)
    assert system.adjointness_error(x, generator=_gen(2)) < tol
    assert system.adjoint(system(x)).shape == x.shape


@pytest.mark.parametrize("name,build,shape", CASES, ids=[c[0] for c in CASES])
def test_complex_input_is_real_and_imaginary_parts(name, build, shape):
    system = build()
    x = torch.randn(shape, dtype=torch.complex128, generator=_gen(3))
    torch.testing.assert_close(system(x), system(x.real) + 1j * system(x.imag))


@pytest.mark.parametrize("name,build,shape", CASES, ids=[c[0] for c in CASES])
def test_owned_tensors_are_buffers(name, build, shape):
    system = build()
    owned = {k: v for k, v in vars(system).items() if isinstance(v, torch.Tensor)}
    assert not owned, f"tensors stored outside buffers: {sorted(owned)}"
    assert dict(system.named_buffers())


def test_examples_fit_the_generic_contract():
    for cls in (Inpainting, Downsampling, CompressedSensing):
        system, x = cls.example(batch_size=3, dtype=torch.complex128)
        assert isinstance(system, LinearSystem) and x.shape[0] == 3 and x.dtype == torch.complex128
        assert system.adjointness_error(x) < 1e-12


# --- downsampling ----------------------------------------------------------------------------


@pytest.mark.parametrize("factor", [1, 2, 3, 4])
def test_box_downsampling_is_the_block_mean(factor):
    x = torch.randn(2, 3, 4 * factor, 3 * factor, dtype=torch.float64, generator=_gen(4))
    a = x.numpy()
    block_means = a.reshape(2, 3, 4, factor, 3, factor).mean(axis=(3, 5))
    np.testing.assert_allclose(Downsampling(factor, "box")(x).numpy(), block_means, atol=1e-14)


def test_no_filter_is_plain_decimation():
    x = torch.randn(2, 1, 9, 6, generator=_gen(5))
    torch.testing.assert_close(Downsampling(3, "none")(x), x[..., ::3, ::3])


def _matlab_bicubic_weights(in_size: int, factor: int) -> np.ndarray:
    """The (out, in) matrix of MATLAB ``imresize(x, 1/factor, 'bicubic')`` along one axis, a port of
    its ``contributions`` function (antialiasing on: kernel stretched by ``factor``), with the
    border handled by circular wrap instead of MATLAB's mirror."""

    def cubic(t):  # MATLAB's cubic(), Keys a = -0.5
        t = np.abs(t)
        return (1.5 * t**3 - 2.5 * t**2 + 1) * (t <= 1) + (-0.5 * t**3 + 2.5 * t**2 - 4 * t + 2) * (
            (t > 1) & (t <= 2)
        )

    scale = 1.0 / factor
    kernel_width = 4.0 / scale
    out_size = in_size // factor
    weights = np.zeros((out_size, in_size))
    for i in range(1, out_size + 1):  # MATLAB's 1-based coordinates
        u = i / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - kernel_width / 2)
        indices = left + np.arange(math.ceil(kernel_width) + 2)
        w = scale * cubic(scale * (u - indices))
        w = w / w.sum()
        for index, weight in zip(indices, w, strict=True):
            weights[i - 1, (index - 1) % in_size] += weight
    return weights


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_bicubic_matches_a_numpy_port_of_matlab_imresize(factor):
    height, width = 6 * factor, 5 * factor
    x = torch.randn(2, 2, height, width, dtype=torch.float64, generator=_gen(6))
    rows = _matlab_bicubic_weights(height, factor)
    cols = _matlab_bicubic_weights(width, factor)
    expected = np.einsum("ip,bcpq,jq->bcij", rows, x.numpy(), cols)
    np.testing.assert_allclose(Downsampling(factor, "bicubic")(x).numpy(), expected, atol=1e-13)


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_bicubic_matches_torch_antialiased_interpolation_away_from_borders(factor):
    # torch (like PIL and MATLAB) truncates the kernel at the borders where we wrap around, so
    # only outputs whose support lies inside the image (2 pixels from each border) must agree.
    x = torch.randn(2, 3, 10 * factor, 8 * factor, dtype=torch.float64, generator=_gen(7))
    ours = Downsampling(factor, "bicubic")(x)
    theirs = F.interpolate(
        x, scale_factor=1 / factor, mode="bicubic", antialias=True, align_corners=False
    )
    torch.testing.assert_close(ours[..., 2:-2, 2:-2], theirs[..., 2:-2, 2:-2], atol=1e-13, rtol=0)


def test_bicubic_preserves_constants_and_is_separable_and_symmetric():
    system = Downsampling(3, "bicubic")
    torch.testing.assert_close(system.taps.sum().item(), 1.0)
    torch.testing.assert_close(system.taps, system.taps.flip(0))
    ones = torch.ones(1, 1, 12, 9, dtype=torch.float64)
    torch.testing.assert_close(system(ones), torch.ones(1, 1, 4, 3, dtype=torch.float64))


def test_box_adjoint_is_a_scaled_nearest_upsampling():
    factor = 3
    y = torch.randn(2, 1, 3, 4, dtype=torch.float64, generator=_gen(8))
    expected = np.kron(y.numpy(), np.ones((1, 1, factor, factor))) / factor**2
    np.testing.assert_allclose(Downsampling(factor, "box").adjoint(y).numpy(), expected)


def test_decimation_adjoint_is_zero_filling():
    y = torch.randn(2, 1, 3, 4, dtype=torch.complex128, generator=_gen(9))
    up = Downsampling(2, "none").adjoint(y)
    expected = torch.zeros(2, 1, 6, 8, dtype=torch.complex128)
    expected[..., ::2, ::2] = y
    torch.testing.assert_close(up, expected)


@pytest.mark.parametrize("filter", ["bicubic", "box", "none"])
def test_downsampling_adjoint_is_the_transpose_of_the_explicit_matrix(filter):
    # Build A column by column from unit images: A^H must be its (conjugate) transpose.
    system = Downsampling(2, filter)
    shape = (1, 1, 6, 4)
    n = math.prod(shape)
    eye = torch.eye(n, dtype=torch.float64).reshape(n, *shape[1:])
    matrix = system(eye).reshape(n, -1).T  # (m, n)
    y = torch.randn(1, 1, 3, 2, dtype=torch.complex128, generator=_gen(10))
    expected = (matrix.to(y.dtype).T @ y.flatten()).reshape(shape)
    torch.testing.assert_close(system.adjoint(y), expected)
    # <Ax, y> = <x, A^H y> written out
    x = torch.randn(shape, dtype=torch.complex128, generator=_gen(11))
    lhs = torch.vdot(system(x).flatten(), y.flatten())
    rhs = torch.vdot(x.flatten(), system.adjoint(y).flatten())
    torch.testing.assert_close(lhs, rhs)


def test_downsampling_errors():
    with pytest.raises(ValueError, match=r"multiples of the factor 3.*\(1, 1, 8, 9\)"):
        Downsampling(3, "box")(torch.zeros(1, 1, 8, 9))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\).*\(8, 9\)"):
        Downsampling(1)(torch.zeros(8, 9))
    with pytest.raises(ValueError, match=r"filter must be one of.*'gaussian'"):
        Downsampling(2, "gaussian")
    with pytest.raises(ValueError, match="integer >= 1"):
        Downsampling(1.5)
    with pytest.raises(ValueError, match=r"\(B, C, h, w\).*\(3, 4\)"):
        Downsampling(2).adjoint(torch.zeros(3, 4))


def test_downsampling_keeps_the_input_precision():
    system = Downsampling(2)
    for dtype in (torch.float32, torch.float64, torch.complex64, torch.complex128):
        assert system(torch.zeros(1, 1, 4, 4, dtype=dtype)).dtype == dtype


# --- inpainting ------------------------------------------------------------------------------


def test_random_pixel_mask_keeps_the_requested_fraction_per_sample():
    mask = random_pixel_mask((4, 1, 10, 12), keep_fraction=0.3, generator=_gen(12))
    assert mask.dtype == torch.float32 and set(mask.unique().tolist()) <= {0.0, 1.0}
    assert mask.sum(dim=(1, 2, 3)).tolist() == [36.0] * 4
    assert not torch.equal(mask[0], mask[1])  # one mask per sample
    torch.testing.assert_close(mask, random_pixel_mask((4, 1, 10, 12), 0.3, _gen(12)))
    assert not torch.equal(mask, random_pixel_mask((4, 1, 10, 12), 0.3, _gen(13)))
    assert random_pixel_mask((2, 1, 3, 3), 0.0).sum() == 0
    assert random_pixel_mask((2, 1, 3, 3), 1.0).sum() == 18
    # uniform: every pixel is kept with probability keep_fraction
    frequency = random_pixel_mask((4000, 1, 2, 3), 0.5, _gen(14)).mean(dim=0)
    torch.testing.assert_close(frequency, torch.full_like(frequency, 0.5), atol=0.03, rtol=0)


def test_box_mask_hides_one_box_per_sample():
    mask = box_mask((2, 1, 8, 10), (3, 4), position=(2, 5))
    expected = torch.ones(2, 1, 8, 10)
    expected[..., 2:5, 5:9] = 0
    torch.testing.assert_close(mask, expected)
    random = box_mask((50, 3, 8, 10), 3, generator=_gen(15))
    assert random.shape == (50, 3, 8, 10)
    assert (random == 0).sum(dim=(2, 3)).unique().tolist() == [9]
    assert torch.equal(random[:, 0], random[:, 2])  # the same box in every channel
    assert len({tuple(torch.nonzero(m[0] == 0)[0].tolist()) for m in random}) > 5
    torch.testing.assert_close(random, box_mask((50, 3, 8, 10), 3, generator=_gen(15)))


def test_inpainting_multiplies_by_the_mask():
    mask = random_pixel_mask((2, 1, 5, 6), 0.5, _gen(16))
    x = torch.randn(2, 3, 5, 6, dtype=torch.complex64, generator=_gen(17))
    system = Inpainting(mask)
    torch.testing.assert_close(system(x), mask * x)
    torch.testing.assert_close(system.adjoint(x), system(x))
    torch.testing.assert_close(system.N(x), system(x))
    # float64 masks do not promote float32 images; bool masks are accepted
    assert Inpainting(mask.double())(x.real).dtype == torch.float32
    torch.testing.assert_close(Inpainting(mask.bool())(x), system(x))


def test_inpainting_errors_name_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3, 5, 7\).*\(2, 1, 5, 6\)"):
        Inpainting(torch.ones(2, 1, 5, 6))(torch.zeros(2, 3, 5, 7))
    with pytest.raises(ValueError, match=r"\(3, 3, 5, 6\).*\(2, 1, 5, 6\)"):
        Inpainting(torch.ones(2, 1, 5, 6))(torch.zeros(3, 3, 5, 6))
    with pytest.raises(ValueError, match=r"\(2, 3, 5, 6\).*\(2, 2, 5, 6\)"):
        Inpainting(torch.ones(2, 2, 5, 6))(torch.zeros(2, 3, 5, 6))
    with pytest.raises(ValueError, match=r"\(5, 6\)"):
        Inpainting(torch.ones(5, 6))
    with pytest.raises(ValueError, match="0/1"):
        Inpainting(torch.full((1, 1, 2, 2), 0.5))
    with pytest.raises(ValueError, match="keep_fraction"):
        random_pixel_mask((1, 1, 2, 2), 1.5)
    with pytest.raises(ValueError, match=r"\(9, 2\).*\(8, 10\)"):
        box_mask((1, 1, 8, 10), (9, 2))
    with pytest.raises(ValueError, match=r"\(top, left\) = \(6, 0\)"):
        box_mask((1, 1, 8, 10), 3, position=(6, 0))


# --- compressed sensing ----------------------------------------------------------------------


def test_cs_matrix_statistics():
    m, img_shape = 200, (1, 20, 25)
    real = CompressedSensing(m, img_shape, seed=3, dtype=torch.float64).matrix
    assert real.shape == (m, 500)
    assert abs(real.mean().item()) < 0.003
    assert abs(real.var().item() * m - 1) < 0.02
    cplx = CompressedSensing(m, img_shape, seed=3, dtype=torch.complex128).matrix
    assert abs(cplx.abs().square().mean().item() * m - 1) < 0.02
    for part in (cplx.real, cplx.imag):
        assert abs(part.var().item() * 2 * m - 1) < 0.02
    # E[A^H A] = I: the columns have unit norm on average
    assert abs(real.square().sum(dim=0).mean().item() - 1) < 0.01


def test_cs_is_reproducible_from_its_seed():
    a = CompressedSensing(10, (1, 4, 4), seed=7).matrix
    torch.testing.assert_close(a, CompressedSensing(10, (1, 4, 4), seed=7).matrix)
    assert not torch.equal(a, CompressedSensing(10, (1, 4, 4), seed=8).matrix)
    double = CompressedSensing(10, (1, 4, 4), seed=7, dtype=torch.float64).matrix
    torch.testing.assert_close(a, double.float())
    torch.manual_seed(0)  # the global RNG plays no part
    torch.testing.assert_close(a, CompressedSensing(10, (1, 4, 4), seed=7).matrix)


def test_cs_applies_the_matrix_to_flattened_images():
    system = CompressedSensing(9, (2, 3, 4), seed=2, dtype=torch.complex128)
    x = torch.randn(3, 2, 3, 4, dtype=torch.float64, generator=_gen(18))
    matrix = system.matrix.numpy()
    y = system(x)
    assert y.shape == (3, 9) and y.dtype == torch.complex128
    np.testing.assert_allclose(y.numpy(), x.reshape(3, -1).numpy() @ matrix.T)
    back = system.adjoint(y)
    np.testing.assert_allclose(
        back.numpy(), (y.numpy() @ matrix.conj()).reshape(3, 2, 3, 4), rtol=1e-12
    )


def test_cs_errors_name_the_expected_shape():
    system = CompressedSensing(9, (2, 3, 4))
    with pytest.raises(ValueError, match=r"\(3, 1, 3, 4\).*\(B, 2, 3, 4\)"):
        system(torch.zeros(3, 1, 3, 4))
    with pytest.raises(ValueError, match=r"\(3, 8\).*\(B, 9\)"):
        system.adjoint(torch.zeros(3, 8))
    with pytest.raises(ValueError, match="img_shape"):
        CompressedSensing(9, (3, 4))


# --- composition -----------------------------------------------------------------------------


def test_blocks_compose_with_noise():
    x = torch.rand(2, 3, 12, 12, dtype=torch.float64, generator=_gen(19))
    mask = box_mask((2, 1, 6, 6), 2, generator=_gen(20))
    system = Inpainting(mask) @ Downsampling(2, "bicubic")
    assert isinstance(system, Composition)
    assert system.adjointness_error(x) < 1e-12
    clean = system(x)
    torch.testing.assert_close(clean, mask * Downsampling(2, "bicubic")(x))
    noisy = GaussianNoise(0.01)(clean, generator=_gen(21))
    assert noisy.shape == (2, 3, 6, 6)
    assert system.adjoint(noisy).shape == x.shape
