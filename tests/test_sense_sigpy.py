"""Cartesian MRI Systems against SigPy's ``sigpy.mri.linop.Sense`` (the reference operator), the
centered FFT against ``sigpy.fft``, and SingleCoilMRI's input checks.

``Sense(mps, weights=w)`` is ``sqrt(w) F S`` (SigPy applies the square root of the weights, so that
``A^H A`` carries ``w``); for a 0/1 mask ``sqrt(w) = w``, the mask of our Systems.
"""

import numpy as np
import pytest
import torch

sp = pytest.importorskip("sigpy")
import sigpy.mri  # noqa: E402

from deepinv_lab.functional import fft2c, ifft2c  # noqa: E402
from deepinv_lab.systems.mri import MultiCoilMRI, SingleCoilMRI  # noqa: E402

PRECISIONS = [(torch.complex64, 2e-6), (torch.complex128, 1e-14)]


def _relative(a: torch.Tensor, b: np.ndarray) -> float:
    b = torch.from_numpy(np.asarray(b))
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("shape", [(8, 6), (7, 9), (16, 15)])
@pytest.mark.parametrize("dtype,tol", PRECISIONS)
def test_fft2c_is_sigpy_fft(shape, dtype, tol):
    """Centered orthonormal FFT, DC at (H // 2, W // 2), for even and odd sizes: ESPIRiT maps and
    Poisson masks from SigPy use the same k-space layout as our Systems."""
    x = torch.randn(3, *shape, dtype=dtype)
    assert _relative(fft2c(x), sp.fft(x.numpy(), axes=(-2, -1))) < tol
    assert _relative(ifft2c(x), sp.ifft(x.numpy(), axes=(-2, -1))) < tol


@pytest.mark.parametrize("mask_kind", ["2d", "columns"])
@pytest.mark.parametrize("dtype,tol", PRECISIONS)
def test_multicoil_mri_matches_sense(mask_kind, dtype, tol):
    generator = torch.Generator().manual_seed(0)
    batch, coils, height, width = 2, 4, 12, 10
    maps = torch.randn(batch, coils, height, width, dtype=dtype, generator=generator)
    mask_shape = (batch, 1, height, width) if mask_kind == "2d" else (batch, 1, 1, width)
    mask = (torch.rand(mask_shape, generator=generator) > 0.5).to(maps.real.dtype)
    system = MultiCoilMRI(maps, mask)
    x = torch.randn(batch, 1, height, width, dtype=dtype, generator=generator)
    y = torch.randn(batch, coils, height, width, dtype=dtype, generator=generator)
    ax, ahy = system(x), system.adjoint(y)
    for b in range(batch):
        sense = sigpy.mri.linop.Sense(maps[b].numpy(), weights=mask[b].numpy())
        assert _relative(ax[b], sense(x[b, 0].numpy())) < tol
        assert _relative(ahy[b, 0], sense.H(y[b].numpy())) < tol


@pytest.mark.parametrize("dtype,tol", PRECISIONS)
def test_single_coil_mri_matches_sense_with_unit_map(dtype, tol):
    generator = torch.Generator().manual_seed(1)
    batch, height, width = 3, 9, 12
    mask = (torch.rand(batch, 1, height, width, generator=generator) > 0.6).to(
        torch.empty((), dtype=dtype).real.dtype
    )
    system = SingleCoilMRI(mask)
    x = torch.randn(batch, 1, height, width, dtype=dtype, generator=generator)
    y = torch.randn(batch, 1, height, width, dtype=dtype, generator=generator)
    ax, ahy = system(x), system.adjoint(y)
    unit_map = np.ones((1, height, width), dtype=x.numpy().dtype)
    for b in range(batch):
        sense = sigpy.mri.linop.Sense(unit_map, weights=mask[b].numpy())
        assert _relative(ax[b], sense(x[b, 0].numpy())) < tol
        assert _relative(ahy[b, 0], sense.H(y[b].numpy())) < tol


def test_single_coil_mri_checks_its_inputs():
    with pytest.raises(ValueError, match=r"real mask of shape \(B, 1, H, W\).*\(2, 8, 6\)"):
        SingleCoilMRI(torch.ones(2, 8, 6))
    with pytest.raises(ValueError, match=r"real mask.*complex64"):
        SingleCoilMRI(torch.ones(2, 1, 8, 6, dtype=torch.complex64))
    system = SingleCoilMRI(torch.ones(2, 1, 1, 6))
    assert system.mask.shape == (2, 1, 1, 6)
    with pytest.raises(ValueError, match=r"expected a complex image.*float32.*\(2, 1, 8, 6\)"):
        system(torch.randn(2, 1, 8, 6))
    with pytest.raises(ValueError, match=r"expected a complex k-space.*float64"):
        system.adjoint(torch.randn(2, 1, 8, 6, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"\(2, 1, 8, 5\).*mask of shape \(2, 1, 1, 6\)"):
        system(torch.randn(2, 1, 8, 5, dtype=torch.complex64))
    with pytest.raises(ValueError, match=r"\(2, 3, 8, 6\).*mask of shape \(2, 1, 1, 6\)"):
        system.adjoint(torch.randn(2, 3, 8, 6, dtype=torch.complex64))
    with pytest.raises(ValueError, match=r"\(3, 1, 8, 6\).*mask of shape \(2, 1, 1, 6\)"):
        system(torch.randn(3, 1, 8, 6, dtype=torch.complex64))
