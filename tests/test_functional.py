import numpy as np
import pytest
import torch

from deepinv_lab.functional import (
    center_crop,
    center_crop_to_smallest,
    channels_to_complex,
    complex_to_channels,
    fft2c,
    ifft2c,
    rss,
)


def numpy_fft2c(x: np.ndarray) -> np.ndarray:
    axes = (-2, -1)
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x, axes=axes), norm="ortho"), axes=axes)


def numpy_ifft2c(k: np.ndarray) -> np.ndarray:
    axes = (-2, -1)
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=axes), norm="ortho"), axes=axes)


@pytest.mark.parametrize(
    "shape", [(2, 3, 8, 8), (1, 4, 7, 9), (5, 6), (2, 1, 15, 10), (1, 2, 6, 10), (3, 2, 4)]
)
def test_fft2c_matches_numpy(shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    torch.testing.assert_close(
        fft2c(torch.from_numpy(x)).numpy(), numpy_fft2c(x), rtol=0, atol=1e-12
    )
    torch.testing.assert_close(
        ifft2c(torch.from_numpy(x)).numpy(), numpy_ifft2c(x), rtol=0, atol=1e-12
    )
    x32 = torch.from_numpy(x).to(torch.complex64)
    torch.testing.assert_close(ifft2c(fft2c(x32)), x32, rtol=1e-5, atol=1e-5)


def test_fft2c_is_centered_and_orthonormal():
    x = torch.ones(6, 5, dtype=torch.complex128)
    k = fft2c(x)
    assert k.abs().argmax() == 3 * 5 + 2  # DC at (H // 2, W // 2)
    assert torch.isclose(k.abs().square().sum(), x.abs().square().sum())


def test_fft2c_rejects_real_input():
    with pytest.raises(ValueError, match="complex"):
        fft2c(torch.ones(4, 4))


def test_complex_channel_round_trip_and_layout():
    x = torch.randn(2, 3, 5, 4, dtype=torch.complex64)
    channels = complex_to_channels(x)
    assert channels.shape == (2, 6, 5, 4)
    torch.testing.assert_close(channels[:, :3], x.real)
    torch.testing.assert_close(channels[:, 3:], x.imag)
    torch.testing.assert_close(channels_to_complex(channels), x)
    with pytest.raises(ValueError, match="even number of channels"):
        channels_to_complex(torch.randn(1, 3, 2, 2))


def test_rss_matches_numpy():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 6, 5)) + 1j * rng.standard_normal((2, 4, 6, 5))
    expected = np.sqrt((np.abs(x) ** 2).sum(axis=1))
    torch.testing.assert_close(rss(torch.from_numpy(x), dim=1).numpy(), expected)
    assert rss(torch.from_numpy(x), dim=1, keepdim=True).shape == (2, 1, 6, 5)


@pytest.mark.parametrize("size,crop", [((9, 8), (4, 5)), ((10, 11), (10, 3)), ((7, 7), (1, 1))])
def test_center_crop_matches_numpy_slicing(size, crop):
    x = torch.arange(size[0] * size[1]).reshape(1, *size)
    top, left = (size[0] - crop[0]) // 2, (size[1] - crop[1]) // 2
    expected = x.numpy()[:, top : top + crop[0], left : left + crop[1]]
    np.testing.assert_array_equal(center_crop(x, crop).numpy(), expected)


def test_center_crop_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"\(5, 3\).*\(1, 4, 4\)"):
        center_crop(torch.zeros(1, 4, 4), (5, 3))


def test_center_crop_to_smallest():
    a, b = center_crop_to_smallest(torch.zeros(1, 8, 5), torch.zeros(2, 6, 7))
    assert a.shape == (1, 6, 5) and b.shape == (2, 6, 5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_channels_to_complex_keeps_full_precision_for_half_inputs(dtype):
    # mixed precision: networks emit half floats, complex data must stay complex64
    x = torch.randn(1, 2, 4, 4).to(dtype)
    assert channels_to_complex(x).dtype == torch.complex64


@pytest.mark.parametrize("shape", [(2, 6, 4), (1, 5, 7), (3, 6, 5)])
def test_centered_fft_gradients(shape):
    x = torch.randn(shape, dtype=torch.complex128, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda t: fft2c(t).abs().square().sum() + ifft2c(t).real.sum(), x
    )
