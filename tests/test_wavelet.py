"""Wavelet2D (orthogonal periodic DWT) against its invariants and PyWavelets; soft_threshold
against numpy's closed form. The System walk in test_systems.py covers adjoint, normal, linearity,
dtype and pickling as well."""

import numpy as np
import pytest
import torch

from deepinv_lab.errors import UserError
from deepinv_lab.functional.shrinkage import soft_threshold
from deepinv_lab.systems.wavelet import Wavelet2D, wavelet_filters

WAVELETS = ["haar", "db1", "db2", "db4"]
PRECISION = {torch.float32: 1e-5, torch.float64: 1e-12}


def _relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm()) / float(b.norm())


@pytest.mark.parametrize("wavelet", WAVELETS)
def test_filters_are_orthonormal_with_vanishing_moments(wavelet):
    h, g = wavelet_filters(wavelet)
    length = h.numel()
    for shift in range(0, length, 2):  # <h, h shifted by 2m> = delta_m, the same for g; h _|_ g
        expected = 1.0 if shift == 0 else 0.0
        assert abs(float(h[shift:] @ h[: length - shift]) - expected) < 1e-15
        assert abs(float(g[shift:] @ g[: length - shift]) - expected) < 1e-15
        assert abs(float(h[shift:] @ g[: length - shift])) < 1e-15
    assert abs(float(h.sum()) - 2**0.5) < 1e-15
    k = torch.arange(length, dtype=torch.float64)
    for moment in range(length // 2):  # dbN: N vanishing moments of the wavelet
        assert abs(float((k**moment * g).sum())) < 1e-12 * float((k**moment).abs().sum())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.complex64, torch.complex128])
@pytest.mark.parametrize("wavelet", WAVELETS)
def test_perfect_reconstruction_and_orthogonality(wavelet, dtype):
    torch.manual_seed(0)
    tol = PRECISION[torch.empty((), dtype=dtype).real.dtype]
    system = Wavelet2D(wavelet, levels=3)
    x = torch.randn(3, 2, 16, 24, dtype=dtype)
    coefficients = system(x)
    assert coefficients.shape == x.shape and coefficients.dtype == dtype
    assert _relative_error(system.adjoint(coefficients), x) < tol
    norms = coefficients.flatten(1).norm(dim=1)  # per sample: the transform acts per image
    assert float(((norms - x.flatten(1).norm(dim=1)) / norms).abs().max()) < tol
    y = torch.randn_like(x)
    assert _relative_error(system(system.adjoint(y)), y) < tol  # A A^H = I as well: square


@pytest.mark.parametrize("wavelet", WAVELETS)
def test_batched_complex_adjointness_and_per_image_independence(wavelet):
    torch.manual_seed(1)
    system = Wavelet2D(wavelet, levels=2)
    x = torch.randn(4, 3, 8, 16, dtype=torch.complex128)
    y = torch.randn_like(x)
    lhs = torch.vdot(system(x).flatten(), y.flatten())
    rhs = torch.vdot(x.flatten(), system.adjoint(y).flatten())
    assert abs(complex(lhs - rhs)) < 1e-12 * abs(complex(lhs))
    assert system.adjointness_error(x) < 1e-12
    single = torch.cat([system(x[b : b + 1, c : c + 1]) for b in range(4) for c in range(3)])
    torch.testing.assert_close(system(x), single.reshape(x.shape), rtol=0, atol=1e-14)
    complex_parts = torch.complex(system(x.real), system(x.imag))
    torch.testing.assert_close(system(x), complex_parts, rtol=0, atol=0)


def test_haar_one_level_closed_form():
    """One Haar level of a 2x2 block: average, horizontal, vertical and diagonal differences."""
    x = torch.tensor([[[[1.0, 2.0], [3.0, 5.0]]]], dtype=torch.float64)
    a, b, c, d = 1.0, 2.0, 3.0, 5.0
    expected = torch.tensor([[a + b + c + d, a - b + c - d], [a + b - c - d, a - b - c + d]]) / 2
    torch.testing.assert_close(Wavelet2D("haar", levels=1)(x)[0, 0], expected.double())


@pytest.mark.filterwarnings("ignore:Level value of .* is too high")  # db4 at 4x8, as intended
@pytest.mark.parametrize("levels", [1, 2, 3])
@pytest.mark.parametrize("wavelet", WAVELETS)
def test_matches_pywavelets_periodization(wavelet, levels):
    """Exact correspondence: our output is pywt's ``coeffs_to_array(wavedec2(..., mode=
    "periodization"))``; ``cA`` top-left, then per level ``cH`` bottom-left, ``cV`` top-right and
    ``cD`` bottom-right, same signs and filter ordering (pywt's ``rec_lo``/``rec_hi``)."""
    pywt = pytest.importorskip("pywt")
    np.testing.assert_allclose(wavelet_filters(wavelet)[0].numpy(), pywt.Wavelet(wavelet).rec_lo)
    np.testing.assert_allclose(wavelet_filters(wavelet)[1].numpy(), pywt.Wavelet(wavelet).rec_hi)
    rng = np.random.default_rng(levels)
    images = rng.standard_normal((2, 1, 32, 64))
    ours = Wavelet2D(wavelet, levels)(torch.from_numpy(images)).numpy()
    for image, coefficients in zip(images[:, 0], ours[:, 0], strict=True):
        reference = pywt.wavedec2(image, wavelet, mode="periodization", level=levels)
        h, w = image.shape
        np.testing.assert_allclose(coefficients[: h >> levels, : w >> levels], reference[0])
        for level, (c_h, c_v, c_d) in zip(range(levels, 0, -1), reference[1:], strict=True):
            rows, cols = h >> level, w >> level
            np.testing.assert_allclose(coefficients[rows : 2 * rows, :cols], c_h, atol=1e-12)
            np.testing.assert_allclose(coefficients[:rows, cols : 2 * cols], c_v, atol=1e-12)
            np.testing.assert_allclose(
                coefficients[rows : 2 * rows, cols : 2 * cols], c_d, atol=1e-12
            )
        array, _ = pywt.coeffs_to_array(reference)
        np.testing.assert_allclose(coefficients, array, atol=1e-12)


def test_gradients_flow_through_the_transform():
    torch.manual_seed(2)
    system = Wavelet2D("db4", levels=2)
    x = torch.randn(1, 1, 16, 16, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(system, (x,))
    torch.autograd.gradcheck(system.adjoint, (x,))


@pytest.mark.parametrize(
    "shape,levels",
    [((1, 1, 12, 16), 3), ((2, 1, 16, 20), 3), ((1, 1, 7, 8), 1), ((16, 16), 1)],
)
def test_shapes_that_do_not_divide_raise_naming_shape_and_levels(shape, levels):
    system = Wavelet2D("haar", levels=levels)
    message = rf"shape {tuple(shape)}".replace("(", r"\(").replace(")", r"\)")
    with pytest.raises(UserError, match=rf"Wavelet2D\('haar', levels={levels}\).*{message}"):
        system(torch.zeros(shape))
    with pytest.raises(UserError, match=message):
        system.adjoint(torch.zeros(shape))


def test_bad_arguments_raise():
    with pytest.raises(UserError, match=r"wavelet must be one of .*'db3'"):
        Wavelet2D("db3")
    with pytest.raises(UserError, match="levels must be an integer >= 1, got 0"):
        Wavelet2D("haar", levels=0)


def _numpy_soft_threshold(x: np.ndarray, t) -> np.ndarray:
    magnitude = np.abs(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(magnitude > t, x * (1 - t / magnitude), 0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.complex64, torch.complex128])
def test_soft_threshold_matches_numpy(dtype):
    torch.manual_seed(3)
    x = torch.randn(2, 3, 5, 4, dtype=dtype)
    x[0, 0, 0, 0] = 0
    tol = PRECISION[torch.empty((), dtype=dtype).real.dtype]
    out = soft_threshold(x, 0.7)
    assert out.dtype == dtype and out.shape == x.shape
    np.testing.assert_allclose(out.numpy(), _numpy_soft_threshold(x.numpy(), 0.7), atol=tol)
    per_channel = torch.tensor([0.0, 0.5, 2.0]).view(1, 3, 1, 1)
    np.testing.assert_allclose(
        soft_threshold(x, per_channel).numpy(),
        _numpy_soft_threshold(x.numpy(), per_channel.numpy()),
        atol=tol,
    )
    torch.testing.assert_close(soft_threshold(x, 0.0), x)
    if dtype.is_complex:  # the phase is kept where the magnitude survives
        kept = out.abs() > 0
        torch.testing.assert_close(torch.angle(out[kept]), torch.angle(x[kept]))


def test_soft_threshold_is_the_l1_prox_and_rejects_negative_thresholds():
    x = torch.tensor([-2.0, -0.5, 0.0, 0.3, 1.5], dtype=torch.float64)
    torch.testing.assert_close(
        soft_threshold(x, 1.0), torch.tensor([-1.0, 0.0, 0.0, 0.0, 0.5], dtype=torch.float64)
    )
    with pytest.raises(UserError, match="threshold must be >= 0, got -0.1"):
        soft_threshold(x, -0.1)
