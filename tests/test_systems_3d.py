"""Volumes ``(B, C, X, Y, Z)``: the centered 3D FFT against numpy, 3D downsampling against its
separable definition, tricubic interpolation, noise on volumes, 3D Cartesian multicoil MRI
against the slice-by-slice 2D problems of the readout decoupling, ky-kz masks and the 3D physics.
(Adjointness, normal operators, linearity and pickling of the 3D Systems are checked for every
System in tests/test_systems.py through ``example()``/``example_3d()``.)"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deepinv_lab.data.physics import (
    BirdcageCoils3D,
    Cartesian3DMRIPhysics,
    CartesianMask,
    Gaussian,
)
from deepinv_lab.errors import UserError
from deepinv_lab.functional.fft import fft3c, ifft1c, ifft3c
from deepinv_lab.functional.resize import upsample_bicubic
from deepinv_lab.recons import ZeroFilled
from deepinv_lab.recons.image import Interpolation
from deepinv_lab.systems import (
    FFT3,
    ComplexGaussianNoise,
    Downsampling,
    GaussianNoise,
    MultiCoilMRI,
    MultiCoilMRI3D,
    PoissonNoise,
    birdcage_maps_3d,
    decouple_readout,
    reassemble_readout,
    reconstruct_slices,
)
from deepinv_lab.systems.downsampling import downsampling_taps
from deepinv_lab.systems.sampling import (
    PoissonDiscMaskFunc,
    VariableDensityMaskFunc,
    calibration_slices,
    to_kykz_mask,
)


def _cplx(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, dtype=torch.complex128, generator=g)


# ---- centered 3D FFT ----------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(2, 3, 6, 4, 8), (1, 2, 5, 7, 3), (1, 1, 4, 5, 6)])
def test_fft3c_matches_numpy_and_is_unitary(shape):
    x = _cplx(*shape)
    axes = (-3, -2, -1)
    reference = np.fft.fftshift(
        np.fft.fftn(np.fft.ifftshift(x.numpy(), axes=axes), axes=axes, norm="ortho"), axes=axes
    )
    np.testing.assert_allclose(fft3c(x).numpy(), reference, atol=1e-12)
    torch.testing.assert_close(ifft3c(fft3c(x)), x)
    torch.testing.assert_close(FFT3()(x), fft3c(x))
    assert abs(float(fft3c(x).norm() / x.norm()) - 1) < 1e-12


def test_fft3c_is_separable_1d_transforms():
    x = _cplx(1, 2, 6, 4, 5)
    k = fft3c(x)
    back = ifft1c(ifft1c(ifft1c(k, dim=-1), dim=-2), dim=-3)
    torch.testing.assert_close(back, x)


def test_fft3c_rejects_real_or_flat_input():
    with pytest.raises(ValueError, match="complex"):
        fft3c(torch.randn(2, 4, 4, 4))
    with pytest.raises(ValueError, match=r"\(\.\.\., X, Y, Z\)"):
        fft3c(_cplx(4, 4))


# ---- downsampling and tricubic interpolation -------------------------------------------------
def _matrix_1d(filter_, factor, size):
    """The dense ``(size / factor, size)`` matrix of the 1-D filter-and-decimate, from the taps."""
    taps, start = downsampling_taps(filter_, factor)
    matrix = torch.zeros(size // factor, size, dtype=torch.float64)
    for i in range(size // factor):
        for t, w in enumerate(taps):
            matrix[i, (factor * i + start + t) % size] += w
    return matrix


@pytest.mark.parametrize("filter_", ["bicubic", "box", "none"])
@pytest.mark.parametrize("factor", [2, 3])
def test_downsampling_3d_is_separable_with_an_exact_adjoint(filter_, factor):
    shape = (2 * factor, 3 * factor, 2 * factor)
    x = torch.randn(2, 2, *shape, dtype=torch.float64)
    system = Downsampling(factor, filter_)
    rows = [_matrix_1d(filter_, factor, n) for n in shape]
    expected = torch.einsum("ad,be,cf,...def->...abc", *rows, x)
    torch.testing.assert_close(system(x), expected)
    assert system.adjointness_error(x) < 1e-13
    assert system.adjointness_error(x.to(torch.complex128)) < 1e-13
    # a volume constant along depth is downsampled as its image
    flat = x[:, :, :1].expand_as(x)
    torch.testing.assert_close(system(flat)[:, :, 0], system(x[:, :, 0]))


def test_box_downsampling_3d_is_the_block_mean():
    x = torch.randn(2, 3, 4, 6, 8, dtype=torch.float64)
    torch.testing.assert_close(Downsampling(2, "box")(x), F.avg_pool3d(x, 2))


def test_downsampling_shape_errors_and_patch():
    system = Downsampling(2)
    with pytest.raises(ValueError, match=r"\(2, 1, 4, 5, 6\)"):
        system(torch.randn(2, 1, 4, 5, 6))
    with pytest.raises(ValueError, match=r"\(2, 4\)"):
        system.adjoint(torch.randn(2, 4))
    assert system.patch((slice(0, 4), slice(2, 6), slice(0, 4))) is system


def _bicubic_matrix(length, scale):
    """The ``(scale L, L)`` 1-D bicubic matrix, read off the 2D upsampler: a width-1 image is
    only copied along its width, so column ``j`` of the unit images gives the weights of ``x_j``."""
    eye = torch.eye(length, dtype=torch.float64)[:, :, None]  # L images (L, 1)
    return upsample_bicubic(eye, scale)[:, :, 0].T


def test_tricubic_upsampling_is_separable_bicubic():
    x = torch.randn(2, 1, 3, 4, 5, dtype=torch.float64)
    up = upsample_bicubic(x, 2, spatial_dims=3)
    assert up.shape == (2, 1, 6, 8, 10)
    rows = [_bicubic_matrix(n, 2) for n in x.shape[2:]]
    torch.testing.assert_close(up, torch.einsum("ad,be,cf,...def->...abc", *rows, x))
    ones = torch.ones(1, 1, 3, 4, 5)
    torch.testing.assert_close(upsample_bicubic(ones, 3, 3), torch.ones(1, 1, 9, 12, 15))


def test_interpolation_recon_upsamples_volumes_tricubically():
    x = torch.rand(2, 1, 8, 6, 4, dtype=torch.float64)
    system = Downsampling(2)
    y = system(x)
    recon = Interpolation()
    recon.check_system(system, y)
    torch.testing.assert_close(recon(y, system), upsample_bicubic(y, 2, spatial_dims=3))
    assert recon(y[:, :, 0], system).shape == (2, 1, 6, 4)


# ---- noise -------------------------------------------------------------------------------------
def test_gaussian_noise_on_volumes():
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(2, 1, 16, 16, 16, dtype=torch.complex128)
    sigma = torch.tensor([0.1, 0.3], dtype=torch.float64)
    y = GaussianNoise(sigma)(x, generator=g)
    assert y.shape == x.shape and y.dtype == x.dtype
    power = y.abs().square().mean(dim=(1, 2, 3, 4))
    torch.testing.assert_close(power, sigma**2, rtol=0.1, atol=0)
    real = GaussianNoise(0.2)(x.real, generator=g)
    assert abs(float(real.std()) - 0.2) < 0.01
    assert GaussianNoise(sigma).patch((slice(0, 4),) * 3) is not None


def test_snr_and_poisson_noise_on_volumes():
    g = torch.Generator().manual_seed(1)
    x = _cplx(2, 4, 8, 8, 8)
    y = ComplexGaussianNoise(snr_db=20.0)(x, generator=g)
    noise_power = (y - x).abs().square().mean(dim=(1, 2, 3, 4))
    signal_power = x.abs().square().mean(dim=(1, 2, 3, 4))
    torch.testing.assert_close(
        noise_power / signal_power, torch.full((2,), 0.01, dtype=torch.float64), rtol=0.1, atol=0
    )
    with pytest.raises(UserError, match="snr_db"):
        ComplexGaussianNoise(snr_db=20.0).patch((slice(0, 2),) * 3)
    intensities = torch.full((1, 1, 8, 8, 8), 4.0, dtype=torch.float64)
    counts = PoissonNoise(10.0)(intensities, generator=g)
    assert counts.shape == intensities.shape
    assert abs(float(counts.mean()) - 4.0) < 0.1


# ---- 3D Cartesian multicoil MRI and the readout decoupling ------------------------------------
def _mri3d(batch=2, coils=3, shape=(5, 6, 4), shared_mask=False, seed=0):
    maps = _cplx(batch, coils, *shape, seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    mask = (torch.rand(1 if shared_mask else batch, 1, 1, *shape[1:], generator=g) > 0.5).double()
    return MultiCoilMRI3D(maps, mask), _cplx(batch, 1, *shape, seed=seed + 2)


def test_multicoil_3d_is_mask_fft3_coils():
    system, x = _mri3d()
    axes = (-3, -2, -1)
    coil_images = (system.coil_maps * x).numpy()
    kspace = np.fft.fftshift(
        np.fft.fftn(np.fft.ifftshift(coil_images, axes=axes), axes=axes, norm="ortho"), axes=axes
    )
    np.testing.assert_allclose(system(x).numpy(), kspace * system.mask.numpy(), atol=1e-12)


@pytest.mark.parametrize("shared_mask", [False, True], ids=["per-sample mask", "shared mask"])
def test_3d_zero_filled_equals_stacked_2d_reconstructions(shared_mask):
    system, x = _mri3d(shared_mask=shared_mask)
    kspace = system(x)
    slices = decouple_readout(kspace, system.coil_maps, system.mask)
    readout = x.shape[2]
    assert slices.kspace.shape == (2 * readout, 3, 6, 4)
    assert slices.mask.shape == ((1 if shared_mask else 2 * readout), 1, 6, 4)
    system_2d = MultiCoilMRI(slices.coil_maps, slices.mask)
    # hybrid-space data are the 2D measurements of the slices
    x_slices = x.movedim(2, 1).reshape(2 * readout, 1, 6, 4)
    torch.testing.assert_close(slices.kspace, system_2d(x_slices), rtol=0, atol=1e-12)
    stacked = reassemble_readout(system_2d.adjoint(slices.kspace), readout)
    torch.testing.assert_close(stacked, system.adjoint(kspace), rtol=0, atol=1e-12)
    torch.testing.assert_close(reassemble_readout(x_slices, readout), x)
    # through a 2D Recon, in chunks that do not divide the batch
    magnitude = reconstruct_slices(ZeroFilled("adjoint"), kspace, system, chunk_size=3)
    torch.testing.assert_close(magnitude, system.adjoint(kspace).abs(), rtol=0, atol=1e-12)


def test_decouple_method_keeps_the_acs_width():
    maps = _cplx(2, 2, 3, 4, 4)
    system = MultiCoilMRI3D(maps, torch.ones(2, 1, 1, 4, 4), torch.tensor([2, 4]))
    _, system_2d = system.decouple(system(_cplx(2, 1, 3, 4, 4)))
    assert system_2d.num_low_frequencies.tolist() == [2, 2, 2, 4, 4, 4]


@pytest.mark.parametrize(
    "mask_shape",
    [(2, 1, 1, 6, 4), (1, 1, 1, 6, 4), (2, 1, 1, 1, 4), (2, 1, 1, 6, 1), (2, 1, 1, 1, 1)],
)
def test_multicoil_3d_fast_normal_equals_the_composition(mask_shape):
    maps = _cplx(2, 3, 5, 6, 4)
    g = torch.Generator().manual_seed(3)
    mask = (torch.rand(mask_shape, generator=g) > 0.4) * (0.5 + torch.rand(mask_shape, generator=g))
    system = MultiCoilMRI3D(maps, mask.double())
    x = _cplx(2, 1, 5, 6, 4, seed=4)
    torch.testing.assert_close(system.normal(x), system.adjoint(system(x)), rtol=0, atol=1e-12)


def test_3d_shape_errors_name_the_shapes():
    maps = _cplx(2, 3, 5, 6, 4)
    with pytest.raises(UserError, match=r"ky-kz mask.*\(2, 1, 5, 6, 4\)"):
        MultiCoilMRI3D(maps, torch.ones(2, 1, 5, 6, 4))
    with pytest.raises(UserError, match=r"\(2, 3, 5, 6, 4\) are volumes.*MultiCoilMRI3D"):
        MultiCoilMRI(maps, torch.ones(2, 1, 1, 6, 4))
    with pytest.raises(UserError, match=r"\(2, 3, 6, 4\)"):
        MultiCoilMRI3D(maps[:, :, 0], torch.ones(2, 1, 1, 6, 4))
    system = MultiCoilMRI3D(maps, torch.ones(2, 1, 1, 6, 4))
    with pytest.raises(ValueError, match=r"\(2, 1, 5, 6, 3\).*\(2, 3, 5, 6, 4\)"):
        system(_cplx(2, 1, 5, 6, 3))
    with pytest.raises(UserError, match=r"\(7, 1, 6, 4\)"):
        reassemble_readout(_cplx(7, 1, 6, 4), 5)


# ---- masks on the ky-kz plane and the 3D physics ----------------------------------------------
@pytest.mark.parametrize(
    "mask_func",
    [
        PoissonDiscMaskFunc([4], calib=(6, 8), seed=0),
        VariableDensityMaskFunc([4], calib=(6, 8), seed=0),
    ],
    ids=["poisson", "variable_density"],
)
def test_2d_mask_functions_draw_kykz_masks_of_a_volume(mask_func):
    volume_kspace_shape = (4, 12, 32, 40, 2)  # (coils, X, Y, Z, 2)
    mask, num_low = mask_func(volume_kspace_shape, seed=3)
    kykz = to_kykz_mask(mask)
    assert kykz.shape == (1, 1, 32, 40) and num_low == 8
    rows, cols = calibration_slices((32, 40), (6, 8))
    assert bool(kykz[0, 0, rows, cols].all())
    acceleration = 32 * 40 / float(kykz.sum())
    assert 3.0 < acceleration < 5.0
    maps = _cplx(1, 4, 12, 32, 40)
    MultiCoilMRI3D(maps, kykz[None], num_low)  # broadcasts against (1, coils, X, Y, Z)


def test_birdcage_maps_3d_have_unit_rss():
    maps = birdcage_maps_3d(8, (6, 10, 12), rings=2, rotation=0.3, dtype=torch.complex128)
    assert maps.shape == (8, 6, 10, 12)
    torch.testing.assert_close(
        maps.abs().square().sum(0), torch.ones(6, 10, 12, dtype=torch.float64)
    )
    assert float((maps[:, 0] - maps[:, -1]).abs().max()) > 1e-3  # varies along the readout
    with pytest.raises(UserError, match="rings"):
        birdcage_maps_3d(7, (4, 4, 4), rings=2)


def test_cartesian_3d_physics_measures_volumes():
    physics = Cartesian3DMRIPhysics(
        mask=CartesianMask("variable_density", [4], calib=(4, 4)),
        coils=BirdcageCoils3D(num_coils=4, rings=2),
        noise=Gaussian(sigma=0.01),
    )
    g = torch.Generator().manual_seed(0)
    items = [physics.draw((1, 6, 16, 12), g) for _ in range(2)]
    params = {key: torch.stack([item[key] for item in items]) for key in items[0]}
    assert params["mask"].shape == (2, 1, 1, 16, 12)
    assert params["coil_maps"].shape == (2, 4, 6, 16, 12)
    x = _cplx(2, 1, 6, 16, 12).to(torch.complex64)
    y, estimated = physics.measure(x, params)
    system = physics.system(params)
    assert isinstance(system, MultiCoilMRI3D) and estimated == {}
    clean = system(x)
    assert bool((y[clean == 0] == 0).all())  # noise only on the acquired samples
    residual = (y - clean)[system.mask.expand_as(y) > 0]
    assert 0.005 < float(residual.abs().square().mean().sqrt()) < 0.02
    with pytest.raises(UserError, match=r"\(1, X, Y, Z\).*\(2, 6, 16, 12\)"):
        physics.draw((2, 6, 16, 12), g)
