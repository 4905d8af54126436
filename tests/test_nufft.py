"""Non-Cartesian Systems (NUFFT, MultiCoilNUFFT) and trajectories, checked against SigPy, the exact
DFT and fft2c on both backends (FINUFFT and torchkbnufft); the generic adjointness/linearity checks
run in tests/test_systems.py on the default backend. The FINUFFT backend's own properties (plans,
gradients, tolerance) are in tests/test_nufft_backends.py."""

import math

import numpy as np
import pytest
import sigpy
import sigpy.mri
import torch

from deepinv_lab.functional import fft2c
from deepinv_lab.systems.nufft import NUFFT, MultiCoilNUFFT
from deepinv_lab.systems.trajectories import (
    RADIAL_GOLDEN_ANGLE,
    cartesian_trajectory,
    check_trajectory,
    pipe_density,
    radial_angles,
    radial_density,
    radial_trajectory,
    spiral_trajectory,
)

# A non-square, odd-sized image catches a swapped (ky, kx) order and an off-by-one centre.
SIZE = (20, 15)
COMPLEX = {torch.float32: torch.complex64, torch.float64: torch.complex128}
BACKENDS = ["finufft", "torchkbnufft"]
#: Relative distance from the exact sum, with margin over the measured: FINUFFT at its default
#: tolerance 1e-6 (measured 3.0e-7 in double, 1.2e-6 in single precision), torchkbnufft (6.0e-4
#: and 6.4e-4: its 1024-point kernel tables limit it).
EXACT = {"finufft": 1e-5, "torchkbnufft": 1.5e-3}


def _sigpy_coord(trajectory: torch.Tensor, size) -> np.ndarray:
    """Our (2, K) radians -> SigPy's (K, 2) coordinates in samples, last axis (y, x)."""
    scale = torch.tensor(size, dtype=torch.float64)[:, None] / (2 * math.pi)
    return (trajectory.double() * scale).T.numpy()


def _rel(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _exact_dft(x: torch.Tensor, trajectory: torch.Tensor) -> torch.Tensor:
    """The sum the NUFFT approximates: sum_n x_n exp(-i omega . (n - N // 2)) / sqrt(H W)."""
    height, width = x.shape[-2:]
    ny = torch.arange(height, dtype=torch.float64) - height // 2
    nx = torch.arange(width, dtype=torch.float64) - width // 2
    omega = trajectory.double()
    phase = omega[0][:, None, None] * ny[:, None] + omega[1][:, None, None] * nx
    return torch.einsum(
        "bchw,khw->bck", x.to(torch.complex128), torch.exp(-1j * phase)
    ) / math.sqrt(height * width)


@pytest.fixture
def radial():
    return radial_trajectory(13, 40, dtype=torch.float64)


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


def test_forward_matches_sigpy_and_the_exact_dft(radial, backend):
    torch.manual_seed(0)
    x = torch.randn(1, 1, *SIZE, dtype=torch.complex128)
    ours = NUFFT(radial, SIZE, backend=backend)(x)[0, 0].numpy()
    coord = _sigpy_coord(radial, SIZE)
    image = x[0, 0].numpy()
    # Measured relative errors: 6.8e-3 from SigPy's defaults (oversamp 1.25, width 4; SigPy itself
    # is 6.8e-3 from the exact sum); from SigPy at oversamp 2, width 8 (1.4e-7 from exact): 3.4e-7
    # (FINUFFT) and 6.0e-4 (torchkbnufft).
    assert _rel(ours, sigpy.nufft(image, coord)) < 1.5e-2
    assert _rel(ours, sigpy.nufft(image, coord, oversamp=2, width=8)) < EXACT[backend]
    assert _rel(ours, _exact_dft(x, radial)[0, 0].numpy()) < EXACT[backend]


def test_adjoint_matches_sigpy(radial, backend):
    torch.manual_seed(1)
    y = torch.randn(1, 1, radial.shape[-1], dtype=torch.complex128)
    ours = NUFFT(radial, SIZE, backend=backend).adjoint(y)[0, 0].numpy()
    coord, samples = _sigpy_coord(radial, SIZE), y[0, 0].numpy()
    # Measured: 7.7e-3 from SigPy's defaults; from SigPy at oversamp 2, width 8: 3.7e-7 (FINUFFT),
    # 6.5e-4 (torchkbnufft).
    assert _rel(ours, sigpy.nufft_adjoint(samples, coord, SIZE)) < 1.5e-2
    reference = sigpy.nufft_adjoint(samples, coord, SIZE, oversamp=2, width=8)
    assert _rel(ours, reference) < EXACT[backend]


def test_float32_matches_sigpy_in_float32(backend):
    torch.manual_seed(2)
    trajectory = spiral_trajectory(3, 60, image_size=20)
    x = torch.randn(1, 1, *SIZE, dtype=torch.complex64)
    ours = NUFFT(trajectory, SIZE, backend=backend)(x)[0, 0].numpy()
    theirs = sigpy.nufft(x[0, 0].numpy(), _sigpy_coord(trajectory, SIZE).astype(np.float32))
    assert ours.dtype == theirs.dtype == np.complex64
    # Measured 6.7e-3 (SigPy's default accuracy); from the exact sum 1.2e-6 (FINUFFT), 6.4e-4.
    assert _rel(ours, theirs) < 1.5e-2
    assert _rel(ours, _exact_dft(x, trajectory)[0, 0].numpy()) < EXACT[backend]


def test_cartesian_grid_gives_fft2c(backend):
    torch.manual_seed(3)
    x = torch.randn(2, 3, *SIZE, dtype=torch.complex128)
    samples = NUFFT(cartesian_trajectory(SIZE, dtype=torch.float64), SIZE, backend=backend)(x)
    # Measured at most 1.1e-6 (FINUFFT) and 2.8e-5 (torchkbnufft) in absolute value.
    torch.testing.assert_close(samples.reshape(x.shape), fft2c(x), rtol=0, atol=1e-4)


def test_backends_agree_within_their_tolerances(radial):
    torch.manual_seed(9)
    x = torch.randn(2, 3, *SIZE, dtype=torch.complex128)
    weights = radial_density(13, 40, SIZE, dtype=torch.float64)
    fast, kb = (NUFFT(radial, SIZE, weights=weights, backend=b) for b in BACKENDS)
    assert fast.library == "finufft" and kb.library == "torchkbnufft"
    y = fast(x)
    # torchkbnufft's error dominates: measured 6e-4 (forward), 4e-4 (adjoint), 3e-4 (normal).
    assert (kb(x) - y).norm() / y.norm() < 1.5e-3
    assert (kb.adjoint(y) - fast.adjoint(y)).norm() / fast.adjoint(y).norm() < 1.5e-3
    assert (kb.N(x) - fast.N(x)).norm() / fast.N(x).norm() < 1.5e-3


def test_per_sample_trajectories_match_one_by_one(backend):
    torch.manual_seed(4)
    trajectories = torch.stack([radial_trajectory(5, 32, first_spoke=5 * b) for b in range(3)])
    weights = torch.rand(3, trajectories.shape[-1])
    x = torch.randn(3, 2, 16, 16, dtype=torch.complex64)
    batched = NUFFT(trajectories, (16, 16), weights=weights, backend=backend)
    y = batched(x)
    for b in range(3):
        single = NUFFT(trajectories[b], (16, 16), weights=weights[b], backend=backend)
        torch.testing.assert_close(y[b : b + 1], single(x[b : b + 1]))
        torch.testing.assert_close(batched.adjoint(y)[b : b + 1], single.adjoint(y[b : b + 1]))
        torch.testing.assert_close(batched.N(x)[b : b + 1], single.N(x[b : b + 1]))


def test_multicoil_matches_sigpy_sense(backend):
    torch.manual_seed(5)
    size = (16, 12)
    trajectory = radial_trajectory(9, 32, dtype=torch.float64)
    weights = radial_density(9, 32, size, dtype=torch.float64)
    maps = torch.randn(1, 4, *size, dtype=torch.complex128)
    x = torch.randn(1, 1, *size, dtype=torch.complex128)
    system = MultiCoilNUFFT(trajectory, maps, weights=weights, backend=backend)
    sense = sigpy.mri.linop.Sense(
        maps[0].numpy(), coord=_sigpy_coord(trajectory, size), weights=weights.numpy()
    )
    y = system(x)
    # Measured on both backends: forward 7.4e-3, adjoint 2.7e-3, normal 3.9e-3 (SigPy's default
    # kernel accuracy).
    assert _rel(y[0].numpy(), sense(x[0, 0].numpy())) < 1.5e-2
    assert _rel(system.adjoint(y)[0, 0].numpy(), sense.H(y[0].numpy())) < 1.5e-2
    normal = (sense.H * sense)(x[0, 0].numpy())
    assert _rel(system.N(x)[0, 0].numpy(), normal) < 2e-2


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("per_sample", [False, True])
def test_toeplitz_normal_equals_adjoint_of_forward(dtype, per_sample, backend):
    torch.manual_seed(6)
    if per_sample:
        trajectory = torch.stack([radial_trajectory(7, 32, first_spoke=7 * b) for b in range(2)])
        weights = torch.rand(2, trajectory.shape[-1])
    else:
        trajectory, weights = spiral_trajectory(4, 80, image_size=16), None
    maps = torch.randn(2, 3, 16, 14, dtype=COMPLEX[dtype])
    x = torch.randn(2, 1, 16, 14, dtype=COMPLEX[dtype])
    system = MultiCoilNUFFT(trajectory.to(dtype), maps, weights=weights, backend=backend)
    reference = system.adjoint(system(x))
    # Measured 6e-7 to 1e-6 relative (FINUFFT), 3.5e-6 to 5.1e-6 (torchkbnufft), float32 and
    # float64: the Toeplitz kernel is exact for the exact DFT, so this is the NUFFT's own error,
    # which mostly cancels in A^H A.
    assert (system.N(x) - reference).norm() / reference.norm() < 5e-5
    assert system.nufft.toeplitz_kernel is not None  # cached after the first use
    assert "systems.0.toeplitz_kernel" not in system.state_dict()  # derived, not saved
    exact = MultiCoilNUFFT(
        trajectory.to(dtype), maps, weights=weights, toeplitz=False, backend=backend
    )
    torch.testing.assert_close(exact.N(x), reference)


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_adjointness_with_toeplitz_normal(dtype, backend):
    torch.manual_seed(7)
    tol = 1e-5 if dtype == torch.complex64 else 1e-12
    example, x = MultiCoilNUFFT.example(batch_size=3, dtype=dtype)
    trajectory, weights = example.trajectory, example.nufft.weights
    single = NUFFT(trajectory, example.nufft.image_size, weights=weights, backend=backend)
    multi = MultiCoilNUFFT(trajectory, example.coil_maps, weights=weights, backend=backend)
    for system, image in ((single, torch.randn_like(x)), (multi, x)):
        assert system.adjointness_error(image) < tol
        assert system.N.adjointness_error(image) < tol  # the Toeplitz normal is self-adjoint
    spiral = NUFFT(spiral_trajectory(2, 50, dtype=trajectory.dtype), (12, 12), backend=backend)
    assert spiral.adjointness_error(torch.randn(2, 1, 12, 12, dtype=dtype)) < tol


def test_gradient_is_the_normal_operator(backend):
    torch.manual_seed(8)
    example, x = MultiCoilNUFFT.example(dtype=torch.complex128)
    system = MultiCoilNUFFT(
        example.trajectory, example.coil_maps, weights=example.nufft.weights, backend=backend
    )
    x.requires_grad_(True)
    (system(x).abs() ** 2).sum().backward()
    torch.testing.assert_close(x.grad, 2 * system.adjoint(system(x.detach())))


def test_golden_angle_spokes():
    trajectory = radial_trajectory(10, 16)
    assert trajectory.shape == (2, 160) and trajectory.dtype == torch.float32
    check_trajectory(trajectory)
    # The last sample of each spoke sits at radius pi (R - 2) / R along the spoke's direction.
    ends = trajectory.double().reshape(2, 10, 16)[:, :, -1]
    angles = torch.remainder(torch.atan2(ends[0], ends[1]), math.pi)
    steps = torch.remainder(angles.diff(), math.pi)
    assert math.degrees(RADIAL_GOLDEN_ANGLE) == pytest.approx(111.2461, abs=1e-4)
    torch.testing.assert_close(
        steps, torch.full_like(steps, RADIAL_GOLDEN_ANGLE), atol=1e-6, rtol=0
    )
    torch.testing.assert_close(angles, radial_angles(10), atol=1e-6, rtol=0)
    uniform = radial_angles(8, golden_angle=False)
    torch.testing.assert_close(uniform, torch.arange(8, dtype=torch.float64) * math.pi / 8)
    # first_spoke continues the sequence.
    torch.testing.assert_close(radial_trajectory(4, 16, first_spoke=6), trajectory[:, 96:])


def test_spiral_within_bounds():
    trajectory = spiral_trajectory(8, 500, image_size=64)
    check_trajectory(trajectory)
    assert trajectory.shape == (2, 4000)
    radius = trajectory.double().norm(dim=0).reshape(8, 500)
    assert radius[:, 0].max() == 0 and radius.max() < math.pi
    assert radius.max() > 0.99 * math.pi
    assert bool((radius.diff(dim=1) > 0).all())  # Archimedean: radius grows linearly
    # Default turns space neighbouring arms by the Nyquist distance 2 pi / 64.
    turns = 64 / (2 * 8)
    assert (math.pi / turns) / 8 == pytest.approx(2 * math.pi / 64)


def test_radial_density_is_a_ramp():
    weights = radial_density(12, 32, (16, 16))
    along_spoke = weights.reshape(12, 32)[0]
    assert bool((along_spoke[16:].diff() > 0).all()) and bool((along_spoke[:16].diff() < 0).all())
    assert float(along_spoke.min()) > 0 and int(along_spoke.argmin()) == 16
    # The weights add up to the area of the disc |k| < pi in units of (2 pi)^2 / (H W).
    disc = (16 * 16) * math.pi * math.pi**2 / (2 * math.pi) ** 2
    assert float(weights.sum()) == pytest.approx(disc, rel=0.02)


def test_pipe_density_agrees_with_the_ramp_and_the_grid():
    n = 32
    spokes = int(math.pi * n / 2)  # Nyquist-sampled periphery
    trajectory = radial_trajectory(spokes, 2 * n, golden_angle=False, dtype=torch.float64)
    pipe = pipe_density(trajectory, (n, n), iterations=10).reshape(spokes, 2 * n)
    ramp = radial_density(spokes, 2 * n, (n, n), dtype=torch.float64).reshape(spokes, 2 * n)
    # Away from the centre and the disc's edge (where gridding smears) they agree: measured 1.5 %.
    inner = list(range(8, 28)) + list(range(37, 58))
    torch.testing.assert_close(pipe[:, inner], ramp[:, inner], rtol=0.05, atol=0)
    # A Cartesian grid twice as fine as the image's: each sample stands for a quarter pixel
    # (measured within 1.0 %: the gridding kernel is summed on a grid, not integrated).
    fine = cartesian_trajectory((2 * n, 2 * n), dtype=torch.float64)
    torch.testing.assert_close(
        pipe_density(fine, (n, n), iterations=3),
        torch.full((4 * n * n,), 0.25, dtype=fine.dtype),
        rtol=0.02,
        atol=0,
    )
    batched = pipe_density(torch.stack([trajectory, trajectory]), (n, n), iterations=2)
    assert batched.shape == (2, trajectory.shape[-1])


def test_density_compensation_sharpens_the_point_spread_function(backend):
    n = 32
    spokes = int(math.pi * n / 2)
    trajectory = radial_trajectory(spokes, 2 * n)
    delta = torch.zeros(1, 1, n, n, dtype=torch.complex64)
    delta[..., n // 2, n // 2] = 1

    def concentration(weights):
        psf = NUFFT(trajectory, (n, n), weights=weights, backend=backend).N(delta)
        return float(psf[..., n // 2, n // 2].abs() ** 2 / (psf.abs() ** 2).sum()), psf

    plain, _ = concentration(None)
    for weights in (pipe_density(trajectory, (n, n)), radial_density(spokes, 2 * n, (n, n))):
        compensated, psf = concentration(weights)
        # Measured: 0.29 of the energy in the peak without compensation, 0.78 (Pipe) and 0.74
        # (ramp) with it; the peak, 0.81 and 0.79, is the sampled fraction of k-space, pi / 4.
        assert compensated > 2.3 * plain
        assert float(psf[..., n // 2, n // 2].real) == pytest.approx(math.pi / 4, rel=0.1)


def test_buffers_move_with_the_module():
    system, x = MultiCoilNUFFT.example()
    names = {name for name, _ in system.named_buffers()}
    assert {"systems.0.trajectory", "systems.0.weights", "systems.1.coil_maps"} <= names
    double = MultiCoilNUFFT.example(dtype=torch.complex128)[0]
    assert double.nufft.dtype == torch.complex128
    moved = system.to(torch.device("cpu"))
    torch.testing.assert_close(moved(x), system(x))


def test_bad_inputs_name_what_was_expected_and_given():
    trajectory = radial_trajectory(4, 16)
    with pytest.raises(ValueError, match=r"\[-pi, pi\).*got values in \[-4.08"):
        check_trajectory(trajectory * 1.3)
    with pytest.raises(ValueError, match=r"\[-pi, pi\)"):
        NUFFT(trajectory + math.pi, (8, 8))
    with pytest.raises(ValueError, match=r"shape \(2, K\) or \(B, 2, K\).*got shape \(3, 64\)"):
        NUFFT(torch.zeros(3, 64), (8, 8))
    with pytest.raises(ValueError, match=r"shape \(2, K\) or \(B, 2, K\).*got dtype torch.int64"):
        check_trajectory(torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="NaN"):
        check_trajectory(torch.full((2, 3), float("nan")))

    system = NUFFT(trajectory, (8, 6))
    with pytest.raises(ValueError, match=r"\(B, C, 8, 6\).*complex64.*\(2, 1, 8, 6\).*float32"):
        system(torch.randn(2, 1, 8, 6))  # real input to a complex operator
    with pytest.raises(ValueError, match=r"\(B, C, 8, 6\).*got shape \(2, 1, 8, 8\)"):
        system(torch.randn(2, 1, 8, 8, dtype=torch.complex64))
    with pytest.raises(ValueError, match=r"complex64.*got shape \(2, 1, 8, 6\).*complex128"):
        system(torch.randn(2, 1, 8, 6, dtype=torch.complex128))
    with pytest.raises(ValueError, match=r"\(B, C, 64\).*got shape \(2, 1, 63\)"):
        system.adjoint(torch.randn(2, 1, 63, dtype=torch.complex64))
    with pytest.raises(ValueError, match=r"weights of shape \(64,\).*got .*shape \(63,\)"):
        NUFFT(trajectory, (8, 6), weights=torch.ones(63))

    per_sample = torch.stack([trajectory, trajectory, trajectory])
    with pytest.raises(ValueError, match=r"\(3, C, 8, 6\).*got shape \(2, 1, 8, 6\)"):
        NUFFT(per_sample, (8, 6))(torch.randn(2, 1, 8, 6, dtype=torch.complex64))

    maps = torch.randn(2, 4, 8, 6, dtype=torch.complex64)
    with pytest.raises(ValueError, match=r"coil maps of shape \(B, coils, H, W\).*\(4, 8, 6\)"):
        MultiCoilNUFFT(trajectory, maps[0])
    with pytest.raises(ValueError, match=r"dtype torch.complex128.*got torch.complex64"):
        MultiCoilNUFFT(trajectory.double(), maps)
    with pytest.raises(ValueError, match=r"trajectory of shape \(3, 2, 64\).*\(2, 4, 8, 6\)"):
        MultiCoilNUFFT(per_sample, maps)
    multicoil = MultiCoilNUFFT(trajectory, maps)
    with pytest.raises(ValueError, match=r"\(2, 1, 8, 5\).*\(2, 4, 8, 6\)"):
        multicoil(torch.randn(2, 1, 8, 5, dtype=torch.complex64))
    with pytest.raises(ValueError, match=r"\(B, C, 64\).*got shape \(2, 4, 60\)"):
        multicoil.adjoint(torch.randn(2, 4, 60, dtype=torch.complex64))
