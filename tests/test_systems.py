"""Every LinearSystem subclass is found automatically (a subclass walk, not a list) and checked:
adjointness (float32/float64 precision, batch > 1), the normal operator, linearity, .to(dtype)
keeping every buffer consistent, pickling, and gradient flow. A System added by a user in
deepinv_lab.systems is covered the day it is added: it only has to provide ``example()``. A System
that also takes volumes ``(B, C, X, Y, Z)`` provides ``example_3d()``, checked the same way."""

import copy
import pickle

import pytest
import torch

from deepinv_lab.discovery import subclasses
from deepinv_lab.errors import UserError
from deepinv_lab.systems.base import Composition, LinearSystem, flatten_parts
from deepinv_lab.systems.cs import CompressedSensing
from deepinv_lab.systems.mri import FFT2, CoilSensitivity, KSpaceMask, MultiCoilMRI

SYSTEMS = subclasses(LinearSystem, "deepinv_lab.systems")
PRECISION = {
    torch.complex64: 1e-5,
    torch.complex128: 1e-12,
    torch.float32: 1e-5,
    torch.float64: 1e-12,
}


def _dtypes(cls):
    complex_ = [torch.complex64, torch.complex128]
    return complex_ + [torch.float32, torch.float64] if cls.accepts_real else complex_


#: (class, name of its example classmethod): ``example`` for all, ``example_3d`` for volumes too
EXAMPLES = [(cls, "example") for cls in SYSTEMS] + [
    (cls, "example_3d") for cls in SYSTEMS if hasattr(cls, "example_3d")
]
EXAMPLE_IDS = [cls.__name__ + ("-3d" if name == "example_3d" else "") for cls, name in EXAMPLES]
CASES = [(cls, name, dtype) for cls, name in EXAMPLES for dtype in _dtypes(cls)]
IDS = [
    f"{cls.__name__}{'-3d' if name == 'example_3d' else ''}-{str(dtype).removeprefix('torch.')}"
    for cls, name, dtype in CASES
]


def _close(a, b, rtol: float) -> None:
    a, b = flatten_parts(a), flatten_parts(b)
    error = float((a - b).norm()) / max(float(b.norm()), 1e-30)
    assert error <= rtol, f"relative error {error:.3g} > {rtol:.3g}"


def test_discovery_finds_the_mri_primitives():
    names = {cls.__name__ for cls in SYSTEMS}
    assert {"FFT2", "KSpaceMask", "CoilSensitivity", "MultiCoilMRI", "Composition"} <= names


def test_volume_systems_are_checked_in_3d():
    volumes = {
        cls.__name__
        for cls, name in EXAMPLES
        if getattr(cls, name)(batch_size=1, dtype=torch.complex64)[1].ndim == 5
    }
    expected = {"Downsampling", "FFT3", "KSpaceMask", "CoilSensitivity", "MultiCoilMRI3D"}
    assert expected <= volumes


@pytest.mark.parametrize("cls,example,dtype", CASES, ids=IDS)
def test_adjoint_and_normal(cls, example, dtype):
    torch.manual_seed(0)
    tol = PRECISION[dtype]
    system, x = getattr(cls, example)(batch_size=3, dtype=dtype)
    assert x.dtype == dtype
    assert system.adjointness_error(x) < tol
    assert system.H.adjointness_error(system(x)) < tol
    _close(system.N(x), system.adjoint(system(x)), max(100 * tol, cls.normal_tolerance))


@pytest.mark.parametrize("cls,example", EXAMPLES, ids=EXAMPLE_IDS)
def test_linearity_and_pickling(cls, example):
    torch.manual_seed(1)
    system, x = getattr(cls, example)(batch_size=2, dtype=torch.complex128)
    x2 = torch.randn_like(x)
    a = 0.3 - 1.2j
    lhs = system(a * x + x2)
    rhs = [a * u + v for u, v in zip(_tuple(system(x)), _tuple(system(x2)), strict=True)]
    _close(lhs, rhs if isinstance(lhs, tuple) else rhs[0], 1e-10)
    clone = pickle.loads(pickle.dumps(system))
    _close(clone(x), system(x), 0.0)


def _tuple(t):
    return t if isinstance(t, tuple) else (t,)


@pytest.mark.parametrize("cls,example", EXAMPLES, ids=EXAMPLE_IDS)
def test_to_dtype_keeps_every_buffer_consistent(cls, example):
    torch.manual_seed(2)
    system, x = getattr(cls, example)(batch_size=2, dtype=torch.complex64)
    double = copy.deepcopy(system).to(torch.float64)
    for name, tensor in [*double.named_buffers(), *double.named_parameters()]:
        if tensor.is_floating_point() or tensor.is_complex():
            assert tensor.dtype in (torch.float64, torch.complex128), f"{name}: {tensor.dtype}"
    out = double(x.to(torch.complex128))
    assert all(part.dtype == torch.complex128 for part in _tuple(out))
    _close(out, system(x), 1e-4)
    single = copy.deepcopy(double).to(torch.complex64)
    assert all(part.dtype == torch.complex64 for part in _tuple(single(x)))


@pytest.mark.parametrize("cls,example", EXAMPLES, ids=EXAMPLE_IDS)
def test_gradient_of_the_data_fidelity(cls, example):
    """d ||A x||^2 / dx = 2 A^H A x: autograd flows through the System and agrees with adjoint."""
    torch.manual_seed(3)
    system, x = getattr(cls, example)(batch_size=2, dtype=torch.complex128)
    x = x.clone().requires_grad_(True)
    sum(part.abs().square().sum() for part in _tuple(system(x))).backward()
    with torch.no_grad():
        expected = 2 * system.adjoint(system(x))
    _close(x.grad, expected, 1e-8)


def test_adjointness_error_detects_a_wrong_adjoint():
    class WrongAdjoint(FFT2):
        def adjoint(self, k):
            return 1.01 * super().adjoint(k)

    _, x = FFT2.example(dtype=torch.complex128)
    assert 0.5e-2 < WrongAdjoint().adjointness_error(x) < 2e-2


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


def test_scaling_by_numbers_and_per_sample_factors():
    torch.manual_seed(4)
    system, x = CompressedSensing.example(batch_size=2, dtype=torch.complex128)
    y = system(x)
    torch.testing.assert_close((2 * system)(x), 2 * y)
    torch.testing.assert_close((system * torch.tensor(-0.5))(x), -0.5 * y)
    factors = torch.tensor([1.0, 2.0], dtype=torch.float64)
    expected = torch.stack([y[0], 2 * y[1]])
    torch.testing.assert_close((system * factors)(x), expected)
    torch.testing.assert_close((factors * system)(x), expected)
    complex_factors = torch.tensor([1 - 1j, 0.5j], dtype=torch.complex128)
    scaled = system * complex_factors
    torch.testing.assert_close(
        scaled.adjoint(y), complex_factors.conj()[:, None, None, None] * system.adjoint(y)
    )
    assert scaled.adjointness_error(x) < 1e-12
    with pytest.raises(ValueError, match=r"2 per-sample factors for an output of shape \(3, 17\)"):
        scaled(torch.cat([x, x[:1]]))


@pytest.mark.parametrize("reversed_", [False, True], ids=["A * x", "x * A"])
def test_multiplying_a_system_by_an_image_raises(reversed_):
    system, x = CompressedSensing.example(batch_size=2, dtype=torch.complex64)
    with pytest.raises(UserError, match=r"tensor of shape \(2, 2, 4, 5\).*call A\(x\)"):
        x * system if reversed_ else system * x


def test_stack_normal_is_the_sum_of_normals():
    from deepinv_lab.systems.base import Identity, Stack

    system, x = MultiCoilMRI.example(dtype=torch.complex128)
    stacked = Stack([system, 0.5 * Identity()])
    torch.testing.assert_close(stacked.N(x), system.N(x) + 0.25 * x)
    with pytest.raises(ValueError, match="tuple of 2 tensors"):
        stacked.adjoint(system(x))


def test_sum_needs_outputs_of_one_shape():
    from deepinv_lab.systems.base import Identity, Sum

    system, x = CompressedSensing.example(batch_size=2, dtype=torch.complex64)
    with pytest.raises(ValueError, match=r"^Sum: the Systems' forward outputs differ in shape"):
        Sum([system, Identity()])(x)


@pytest.mark.parametrize(
    "maps_shape,mask_shape",
    [
        ((2, 4, 8, 6), (2, 1, 1, 6)),  # column mask: 1D FFTs along W
        ((2, 4, 8, 6), (2, 1, 8, 6)),  # 2D mask
        ((2, 4, 8, 6), (2, 1, 8, 1)),  # row mask
        ((2, 4, 7, 5), (2, 1, 7, 5)),  # odd sizes
        ((2, 4, 8, 6), (2, 1, 1, 1)),  # no undersampling
    ],
)
def test_multicoil_fast_normal_matches_the_composition(maps_shape, mask_shape):
    torch.manual_seed(4)
    maps = torch.randn(maps_shape, dtype=torch.complex128)
    mask = (torch.rand(mask_shape) > 0.4).double()
    system = MultiCoilMRI(maps, mask)
    x = torch.randn(maps_shape[0], 1, *maps_shape[2:], dtype=torch.complex128)
    torch.testing.assert_close(system.normal(x), system.adjoint(system(x)))


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
    with pytest.raises(ValueError, match=r"\(2, 1, 8, 5\).*\(2, 4, 8, 6\)"):
        system.normal(torch.randn(2, 1, 8, 5, dtype=torch.complex64))
    with pytest.raises(ValueError, match=r"\(2, 3, 8, 6\).*\(2, 4, 8, 6\)"):
        system.adjoint(torch.randn(2, 3, 8, 6, dtype=torch.complex64))
    with pytest.raises(ValueError, match="expects a complex image"):
        system(torch.randn(2, 1, 8, 6))
    with pytest.raises(ValueError, match=r"mask of shape \(1, 1, 7\).*\(2, 4, 8, 6\)"):
        KSpaceMask(torch.ones(1, 1, 7))(torch.randn(2, 4, 8, 6, dtype=torch.complex64))


def test_system_to_keeps_complex_buffers_complex():
    system, _ = MultiCoilMRI.example(dtype=torch.complex64)
    system.to(torch.float64)
    assert system.coil_maps.dtype == torch.complex128 and system.mask.dtype == torch.float64
    system.float()
    assert system.coil_maps.dtype == torch.complex64 and system.mask.dtype == torch.float32
