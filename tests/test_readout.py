"""3D Cartesian MRI reconstructed slice by slice: ``ReadoutDecoupled`` equals the 2D Recon on each
decoupled ky-kz slice, the zero-filled baseline works on volumes, and bad input is named."""

import numpy as np
import pytest
import torch

from deepinv_lab.errors import UserError
from deepinv_lab.recons import CGSense, ReadoutDecoupled, ZeroFilled
from deepinv_lab.systems import MultiCoilMRI
from deepinv_lab.systems.coils import birdcage_maps_3d
from deepinv_lab.systems.mri3d import MultiCoilMRI3D, decouple_readout


@pytest.fixture(scope="module")
def acquisition():
    generator = torch.Generator().manual_seed(0)
    shape = (6, 12, 10)
    maps = birdcage_maps_3d(4, shape).to(torch.complex128)[None].repeat(2, 1, 1, 1, 1)
    mask = (torch.rand(2, 1, 1, 12, 10, generator=generator) < 0.5).double()
    mask[..., 4:8, 3:7] = 1.0
    system = MultiCoilMRI3D(maps, mask)
    x = torch.randn(2, 1, *shape, dtype=torch.complex128, generator=generator)
    return system, x, system(x)


def test_zero_filled_volume_is_the_rss_of_the_inverse_3d_fft(acquisition):
    system, _, y = acquisition
    expected = np.sqrt((np.abs(np.fft.fftshift(np.fft.ifftn(np.fft.ifftshift(
        y.numpy(), axes=(-3, -2, -1)), axes=(-3, -2, -1), norm="ortho"), axes=(-3, -2, -1))) ** 2
    ).sum(axis=1, keepdims=True))  # fmt: skip
    torch.testing.assert_close(ZeroFilled()(y, system), torch.from_numpy(expected))
    # the same through the decoupled readout: RSS over coils commutes with the slicing
    torch.testing.assert_close(ReadoutDecoupled(ZeroFilled(), chunk_size=5)(y, system),
                               ZeroFilled()(y, system))  # fmt: skip


def test_each_slice_is_the_2d_recon_of_its_decoupled_problem(acquisition):
    system, _, y = acquisition
    inner = CGSense(damping=0.01, max_iter=100, tol=1e-8)
    volume = ReadoutDecoupled(inner, chunk_size=4)(y, system)
    assert volume.shape == (2, 1, 6, 12, 10)
    slices = decouple_readout(y, system.coil_maps, system.mask)
    for b, x in [(0, 0), (1, 5), (1, 2)]:
        index = b * 6 + x
        mask = slices.mask[index : index + 1]
        alone = inner(slices.kspace[index : index + 1],
                      MultiCoilMRI(slices.coil_maps[index : index + 1], mask))  # fmt: skip
        torch.testing.assert_close(volume[b : b + 1, :, x], alone)


def test_cg_sense_slice_by_slice_solves_the_3d_least_squares_problem(acquisition):
    """The decoupled problems are the 3D one: the slices' CG-SENSE solutions stacked satisfy the
    3D normal equations ``(A^H A + lam I) x = A^H y``."""
    system, _, y = acquisition
    lam = 0.01

    inner = CGSense(damping=lam, max_iter=200, tol=1e-12, magnitude=False)
    x = ReadoutDecoupled(inner)(y, system)
    residual = system.normal(x) + lam * x - system.adjoint(y)
    assert float(residual.norm() / system.adjoint(y).norm()) < 1e-8


def test_bad_input_is_named_in_one_line(acquisition):
    system, _, y = acquisition
    with pytest.raises(UserError, match="chunk_size must be >= 1"):
        ReadoutDecoupled(ZeroFilled(), chunk_size=0)
    two_d = MultiCoilMRI(torch.ones(1, 2, 8, 8, dtype=torch.complex64), torch.ones(1, 1, 1, 8))
    with pytest.raises(UserError, match="ReadoutDecoupled reconstructs 3D Cartesian.*MultiCoilMRI"):
        ReadoutDecoupled(ZeroFilled()).check_system(two_d, torch.zeros(1, 2, 8, 8))
    ReadoutDecoupled(ZeroFilled()).check_system(system, y)  # a 3D acquisition passes
