"""Every LinearSystem subclass is found automatically and checked: adjointness (float32 and
float64, batch > 1), linearity, .H, .N, and the algebra."""

import importlib
import pickle
import pkgutil

import pytest
import torch

import deepinv_lab.systems
from deepinv_lab.systems.base import Composition, Identity, LinearSystem
from deepinv_lab.systems.mri import FFT2, CoilSensitivity, KSpaceMask, MultiCoilMRI


def _all_linear_systems() -> list[type[LinearSystem]]:
    for module in pkgutil.walk_packages(deepinv_lab.systems.__path__, "deepinv_lab.systems."):
        importlib.import_module(module.name)
    found, stack = [], [LinearSystem]
    while stack:
        for sub in stack.pop().__subclasses__():
            if sub.__module__.startswith("deepinv_lab."):
                found.append(sub)
            stack.append(sub)
    return sorted(set(found), key=lambda c: c.__name__)


SYSTEMS = _all_linear_systems()


def test_discovery_finds_the_mri_primitives():
    names = {cls.__name__ for cls in SYSTEMS}
    assert {"FFT2", "KSpaceMask", "CoilSensitivity", "MultiCoilMRI", "Composition"} <= names


@pytest.mark.parametrize("dtype,tol", [(torch.complex64, 1e-5), (torch.complex128, 1e-12)])
@pytest.mark.parametrize("cls", SYSTEMS, ids=lambda c: c.__name__)
def test_adjointness(cls, dtype, tol):
    torch.manual_seed(0)
    system, x = cls.example(batch_size=3, dtype=dtype)
    assert x.shape[0] == 3 or isinstance(system, FFT2 | Identity)
    assert system.adjointness_error(x) < tol
    assert system.H.adjointness_error(system(x)) < tol
    # the normal operator is A^H A
    torch.testing.assert_close(system.N(x), system.adjoint(system(x)))


@pytest.mark.parametrize("cls", SYSTEMS, ids=lambda c: c.__name__)
def test_linearity_and_pickling(cls):
    torch.manual_seed(1)
    system, x = cls.example(batch_size=2, dtype=torch.complex128)
    x2 = torch.randn_like(x)
    a = 0.3 - 1.2j
    torch.testing.assert_close(system(a * x + x2), a * system(x) + system(x2))
    clone = pickle.loads(pickle.dumps(system))
    torch.testing.assert_close(clone(x), system(x))


def test_adjointness_error_detects_a_wrong_adjoint():
    class WrongAdjoint(FFT2):
        def adjoint(self, k):
            return 1.01 * super().adjoint(k)

    _, x = FFT2.example(dtype=torch.complex128)
    assert WrongAdjoint().adjointness_error(x) > 1e-3


def test_algebra():
    torch.manual_seed(2)
    system, x = MultiCoilMRI.example(dtype=torch.complex128)
    other, _ = MultiCoilMRI.example(dtype=torch.complex128)
    assert system.H.H is system
    torch.testing.assert_close((2.0 * system)(x), 2 * system(x))
    torch.testing.assert_close((system - other)(x), system(x) - other(x))
    torch.testing.assert_close((-system)(x), -system(x))
    mask = KSpaceMask(system.mask)
    composed = mask @ FFT2() @ CoilSensitivity(system.coil_maps)
    assert isinstance(composed, Composition) and len(composed.systems) == 3
    torch.testing.assert_close(composed(x), system(x))
    torch.testing.assert_close(system.adjoint(system(x)), system.N(x))


def test_multicoil_mri_is_mask_fft_coils():
    torch.manual_seed(3)
    system, x = MultiCoilMRI.example(dtype=torch.complex128)
    coil_images = system.coil_maps * x
    kspace = torch.fft.fftshift(
        torch.fft.fft2(torch.fft.ifftshift(coil_images, dim=(-2, -1)), norm="ortho"), dim=(-2, -1)
    )
    torch.testing.assert_close(system(x), kspace * system.mask)


def test_shape_errors_name_both_shapes():
    maps = torch.randn(2, 4, 8, 6, dtype=torch.complex64)
    with pytest.raises(ValueError, match=r"\(2, 1, 1, 5\).*\(2, 4, 8, 6\)"):
        MultiCoilMRI(maps, torch.ones(2, 1, 1, 5))
    system = MultiCoilMRI(maps, torch.ones(2, 1, 1, 6))
    with pytest.raises(ValueError, match=r"\(2, 1, 8, 5\).*\(2, 4, 8, 6\)"):
        system(torch.randn(2, 1, 8, 5, dtype=torch.complex64))
    with pytest.raises(ValueError, match=r"\(2, 3, 8, 6\).*\(2, 4, 8, 6\)"):
        system.adjoint(torch.randn(2, 3, 8, 6, dtype=torch.complex64))
    with pytest.raises(ValueError, match=r"mask of shape \(1, 1, 7\).*\(2, 4, 8, 6\)"):
        KSpaceMask(torch.ones(1, 1, 7))(torch.randn(2, 4, 8, 6, dtype=torch.complex64))
