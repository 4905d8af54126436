"""The NUFFT backends: FINUFFT's accuracy, gradients (image, samples, trajectory), plan reuse and
the Toeplitz kernel, against a dense DFT written out in torch (differentiable in everything), and
how a backend is chosen."""

import copy
import math
import pickle

import pytest
import torch

from deepinv_lab.errors import UserError
from deepinv_lab.systems.nufft import NUFFT, MultiCoilNUFFT, backends
from deepinv_lab.systems.nufft.backends import resolve_backend
from deepinv_lab.systems.trajectories import radial_density, radial_trajectory, spiral_trajectory

SIZE = (9, 8)  # odd x even: a wrong centre or axis order shows


def dense_dft(size, trajectory: torch.Tensor) -> torch.Tensor:
    """The ``(K, H * W)`` matrix of the NUFFT's exact sum, ``exp(-i omega . (n - N // 2))`` over
    ``sqrt(H W)``, differentiable with respect to the trajectory."""
    height, width = size
    ny = torch.arange(height, dtype=trajectory.dtype) - height // 2
    nx = torch.arange(width, dtype=trajectory.dtype) - width // 2
    phase = trajectory[0][:, None, None] * ny[:, None] + trajectory[1][:, None, None] * nx
    return torch.exp(-1j * phase).reshape(trajectory.shape[-1], -1) / math.sqrt(height * width)


def dense_forward(x: torch.Tensor, trajectory: torch.Tensor) -> torch.Tensor:
    return torch.einsum("kn,bcn->bck", dense_dft(x.shape[-2:], trajectory), x.flatten(2))


def dense_adjoint(y: torch.Tensor, trajectory: torch.Tensor, size) -> torch.Tensor:
    matrix = dense_dft(size, trajectory)
    return torch.einsum("kn,bck->bcn", matrix.conj(), y).reshape(*y.shape[:2], *size)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def _trajectory(spokes=5, readout=12, **kwargs) -> torch.Tensor:
    return radial_trajectory(spokes, readout, dtype=torch.float64, **kwargs)


@pytest.mark.parametrize("tolerance", [1e-2, 1e-4, 1e-6, 1e-10])
def test_tolerance_sets_the_accuracy(tolerance):
    torch.manual_seed(0)
    trajectory = _trajectory(9, 20)
    x = torch.randn(2, 3, *SIZE, dtype=torch.complex128)
    y = torch.randn(2, 3, trajectory.shape[-1], dtype=torch.complex128)
    system = NUFFT(trajectory, SIZE, backend="finufft", tolerance=tolerance)
    # FINUFFT's relative error is about its tolerance, not a bound: measured here 1.0e-2, 1.4e-5,
    # 6e-8 and 3e-11 (and 2.7e-3 at tolerance 1e-3).
    assert _rel(system(x), dense_forward(x, trajectory)) < 3 * tolerance
    assert _rel(system.adjoint(y), dense_adjoint(y, trajectory, SIZE)) < 3 * tolerance


@pytest.mark.parametrize("per_sample", [False, True])
def test_gradients_equal_those_of_the_dense_dft(per_sample):
    """Image, samples, weights and trajectory gradients of forward and adjoint, against autograd
    through the dense DFT (an independent, exact derivative)."""
    torch.manual_seed(1)
    if per_sample:
        trajectory = torch.stack([_trajectory(first_spoke=5 * b) for b in range(2)])
    else:
        trajectory = _trajectory()
    weights = torch.rand(trajectory.shape[-1], dtype=torch.float64) + 0.5
    x = torch.randn(2, 3, *SIZE, dtype=torch.complex128)
    y = torch.randn(2, 3, trajectory.shape[-1], dtype=torch.complex128)
    target_y, target_x = torch.randn_like(y), torch.randn_like(x)

    def run(fast: bool):
        omega = trajectory.clone().requires_grad_(True)
        w = weights.clone().requires_grad_(True)
        image, samples = x.clone().requires_grad_(True), y.clone().requires_grad_(True)
        if fast:
            system = NUFFT(omega, SIZE, weights=w, backend="finufft", tolerance=1e-13)
            forward, adjoint = system(image), system.adjoint(samples)
        else:
            root = w.sqrt()
            rows = omega if omega.ndim == 3 else omega[None].expand(2, -1, -1)
            forward = torch.cat([dense_forward(image[b : b + 1], rows[b]) for b in range(2)]) * root
            adjoint = torch.cat(
                [dense_adjoint(samples[b : b + 1] * root, rows[b], SIZE) for b in range(2)]
            )
        loss = (forward - target_y).abs().pow(2).sum() + (adjoint - target_x).abs().pow(2).sum()
        loss.backward()
        return omega.grad, w.grad, image.grad, samples.grad

    for fast, dense in zip(run(True), run(False), strict=True):
        # Measured 1e-12 to 1e-11 relative.
        assert _rel(fast, dense) < 1e-9


def test_trajectory_gradient_passes_gradcheck():
    torch.manual_seed(2)
    trajectory = (0.9 * _trajectory(3, 8)).requires_grad_(True)  # room to perturb near -pi
    x = torch.randn(1, 2, 6, 5, dtype=torch.complex128)
    y = torch.randn(1, 2, trajectory.shape[-1], dtype=torch.complex128)

    def both(omega, image, samples):
        system = NUFFT(omega, (6, 5), backend="finufft", tolerance=1e-13)
        return system(image), system.adjoint(samples)

    inputs = (trajectory, x.requires_grad_(True), y.requires_grad_(True))
    assert torch.autograd.gradcheck(both, inputs, atol=1e-7, rtol=1e-6)


def test_plans_are_reused_until_the_trajectory_changes():
    torch.manual_seed(3)
    trajectory = _trajectory(7, 16)
    system = NUFFT(trajectory, SIZE, backend="finufft")
    x = torch.randn(2, 3, *SIZE, dtype=torch.complex128)
    first = system(x)
    backend = system.backend_for()
    plans = dict(backend._plans)
    assert len(plans) == 1  # one trajectory, B * C = 6 transforms per call
    system.adjoint(first)  # the same plan runs the adjoint
    torch.testing.assert_close(system(x), first, rtol=0, atol=0)
    assert backend._plans == plans
    system(x[:1])  # another number of transforms: a second plan, the first kept
    assert len(backend._plans) == 2 and set(plans) <= set(backend._plans)

    system.trajectory.mul_(0.5)  # in place: the cached plans are stale
    fresh = NUFFT(trajectory.clone(), SIZE, backend="finufft")
    torch.testing.assert_close(system(x), fresh(x))
    assert not set(plans) & set(map(id, backend._plans.values()))

    single = copy.deepcopy(system).to(torch.complex64)  # a new trajectory tensor: new plans
    torch.testing.assert_close(
        single(x.to(torch.complex64)), fresh(x).to(torch.complex64), rtol=1e-5, atol=1e-5
    )


def test_a_used_operator_pickles_and_copies():
    torch.manual_seed(4)
    example, x = MultiCoilNUFFT.example(dtype=torch.complex128)
    y = example(x)
    example.N(x)  # plans and the Toeplitz kernel exist now
    for clone in (pickle.loads(pickle.dumps(example)), copy.deepcopy(example)):
        torch.testing.assert_close(clone(x), y)
        torch.testing.assert_close(clone.N(x), example.N(x))


@pytest.mark.parametrize("per_sample", [False, True])
def test_toeplitz_normal_equals_the_dense_normal(per_sample):
    torch.manual_seed(5)
    size = (7, 10)
    if per_sample:
        trajectory = torch.stack(
            [spiral_trajectory(2, 40, dtype=torch.float64) * (0.9 + 0.1 * b) for b in range(2)]
        )
        weights = torch.rand(2, trajectory.shape[-1], dtype=torch.float64)
    else:
        trajectory = _trajectory(6, 14)
        weights = radial_density(6, 14, size, dtype=torch.float64)
    system = NUFFT(trajectory, size, weights=weights, backend="finufft", tolerance=1e-12)
    x = torch.randn(2, 3, *size, dtype=torch.complex128)
    rows = trajectory if per_sample else trajectory[None].expand(2, -1, -1)
    w = weights if per_sample else weights[None].expand(2, -1)
    dense = torch.cat(
        [
            dense_adjoint(dense_forward(x[b : b + 1], rows[b]) * w[b], rows[b], size)
            for b in range(2)
        ]
    )
    # The kernel is a double-precision NUFFT at 1e-12: measured 2e-14 relative.
    assert _rel(system.N(x), dense) < 1e-10


def test_backend_choice(monkeypatch):
    cpu, cuda, meta = torch.device("cpu"), torch.device("cuda"), torch.device("meta")
    assert resolve_backend("auto", cpu) == "finufft"
    assert resolve_backend("torchkbnufft", cpu) == "torchkbnufft"
    assert resolve_backend("auto", meta) == "torchkbnufft"
    with pytest.raises(UserError, match="not on meta"):
        resolve_backend("finufft", meta)

    present = {"finufft": True, "cufinufft": False}
    monkeypatch.setattr(backends, "installed", lambda module: present[module])
    assert resolve_backend("auto", cuda) == "torchkbnufft"  # CUDA without cuFINUFFT
    with pytest.raises(UserError, match=r"cufinufft package.*pip install 'deepinv-lab\[cuda\]'"):
        resolve_backend("finufft", cuda)
    present["cufinufft"] = True
    assert resolve_backend("auto", cuda) == "cufinufft"

    present["finufft"] = False
    assert resolve_backend("auto", cpu) == "torchkbnufft"
    trajectory = radial_trajectory(4, 8)
    with pytest.raises(UserError, match="needs the finufft package.*pip install finufft"):
        NUFFT(trajectory, (8, 8), backend="finufft")
    assert NUFFT(trajectory, (8, 8)).library == "torchkbnufft"


def test_bad_options_name_what_was_expected():
    trajectory = radial_trajectory(4, 8)
    with pytest.raises(UserError, match=r"backend must be one of auto, finufft, torchkbnufft"):
        NUFFT(trajectory, (8, 8), backend="kbnufft")
    with pytest.raises(UserError, match=r"tolerance must be in \[1e-06, 0.1\].*float32.*1e-08"):
        NUFFT(trajectory, (8, 8), tolerance=1e-8)
    with pytest.raises(UserError, match=r"tolerance must be in \[1e-14, 0.1\].*float64.*got 0.5"):
        NUFFT(trajectory.double(), (8, 8), tolerance=0.5)
    NUFFT(trajectory.double(), (8, 8), tolerance=1e-12)  # double precision reaches further
    with pytest.raises(UserError, match="numpoints is torchkbnufft's"):
        NUFFT(trajectory, (8, 8), backend="finufft", numpoints=4)
    NUFFT(trajectory, (8, 8), backend="torchkbnufft", numpoints=4)


class _Simulated(torch.utils.data.Dataset):
    def __init__(self, system: NUFFT, x: torch.Tensor):
        self.system, self.x = system, x

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.system(self.x[index : index + 1])[0]


def test_dataloader_workers_run_finufft_after_the_parent_did():
    """Forked workers get one thread each, which libgomp survives (a multithreaded call in a
    forked child hangs, for torch's own OpenMP pool as for FINUFFT's)."""
    torch.manual_seed(6)
    system = NUFFT(radial_trajectory(20, 32), (16, 16), backend="finufft")
    x = torch.randn(4, 2, 16, 16, dtype=torch.complex64)
    expected = system(x)  # the parent's OpenMP pool is running now
    loader = torch.utils.data.DataLoader(
        _Simulated(system, x),
        batch_size=2,
        num_workers=2,
        multiprocessing_context="fork",
        timeout=60,
    )
    torch.testing.assert_close(torch.cat(list(loader)), expected)


class _StandInCufinufftPlan:
    """cuFINUFFT's ``Plan`` interface (as of cufinufft 2.5: a type-1 plan for the adjoint, torch
    tensors in and out, ``out=`` filled in place) computed by FINUFFT on the CPU."""

    def __init__(self, nufft_type, n_modes, n_trans=1, eps=1e-6, isign=None, dtype="complex64",
                 **options):  # fmt: skip
        import finufft

        assert set(options) <= {"upsampfac", "gpu_device_id", "gpu_stream"}, options
        self.plan = finufft.Plan(nufft_type, n_modes, n_trans, eps=eps, isign=isign, dtype=dtype)

    def setpts(self, x, y):
        assert isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)
        self.plan.setpts(x.numpy(), y.numpy())

    def execute(self, data, out):
        assert isinstance(data, torch.Tensor) and isinstance(out, torch.Tensor)
        self.plan.execute(data.numpy(), out=out.numpy())
        return out


def test_the_cufinufft_branch_calls_match_its_interface(monkeypatch):
    """No GPU here: the cuFINUFFT calls run against a stand-in with cuFINUFFT's interface."""
    from types import SimpleNamespace

    from deepinv_lab.systems.nufft import finufft_backend

    real_import = finufft_backend._import
    stand_in = SimpleNamespace(Plan=_StandInCufinufftPlan)
    monkeypatch.setattr(
        finufft_backend,
        "_import",
        lambda library: stand_in if library == "cufinufft" else real_import(library),
    )
    torch.manual_seed(7)
    per_sample = torch.stack([_trajectory(first_spoke=5 * b) for b in range(2)])
    weights = torch.rand(2, per_sample.shape[-1], dtype=torch.float64)
    x = torch.randn(2, 3, *SIZE, dtype=torch.complex128)
    for trajectory in (_trajectory(), per_sample):
        cpu = finufft_backend.FinufftBackend(SIZE, 1e-10)
        gpu = finufft_backend.FinufftBackend(SIZE, 1e-10, gpu=True)
        y = cpu.forward(x, trajectory)
        torch.testing.assert_close(gpu.forward(x, trajectory), y)
        torch.testing.assert_close(gpu.adjoint(y, trajectory), cpu.adjoint(y, trajectory))
        rows = weights if trajectory.ndim == 3 else weights[:1]
        torch.testing.assert_close(
            gpu.toeplitz_kernel(trajectory, rows), cpu.toeplitz_kernel(trajectory, rows)
        )
