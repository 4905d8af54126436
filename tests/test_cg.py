"""Conjugate gradient against dense direct solves (torch.linalg.solve), per-sample convergence,
gradients through the iterations, and least squares with MRI Systems."""

import pytest
import torch

from deepinv_lab.optim import conjugate_gradient, least_squares
from deepinv_lab.optim.convergence import ConvergenceError, ConvergenceWarning
from deepinv_lab.systems.mri import MultiCoilMRI, SingleCoilMRI


def _hpd(eigenvalues: torch.Tensor, dtype: torch.dtype, generator: torch.Generator) -> torch.Tensor:
    """A Hermitian positive definite matrix with the given spectrum and a random eigenbasis."""
    n = eigenvalues.shape[0]
    q, _ = torch.linalg.qr(torch.randn(n, n, dtype=dtype, generator=generator))
    return (q * eigenvalues.to(dtype)) @ q.mH


def _matvec(matrices: torch.Tensor):
    return lambda x: (matrices @ x.unsqueeze(-1)).squeeze(-1)


def _problem(dtype, batch=3, n=12, condition=100.0, seed=0):
    generator = torch.Generator().manual_seed(seed)
    real = torch.empty((), dtype=dtype).real.dtype
    spectrum = torch.logspace(0, torch.log10(torch.tensor(condition)).item(), n, dtype=real)
    matrices = torch.stack([_hpd(spectrum, dtype, generator) for _ in range(batch)])
    rhs = torch.randn(batch, n, dtype=dtype, generator=generator)
    return matrices, rhs


@pytest.mark.parametrize(
    "dtype,tol", [(torch.float64, 1e-12), (torch.complex128, 1e-12), (torch.complex64, 1e-5)]
)
def test_matches_direct_solve(dtype, tol):
    matrices, rhs = _problem(dtype)
    x, info = conjugate_gradient(_matvec(matrices), rhs, tol=tol * 1e-2, max_iter=200)
    expected = torch.linalg.solve(matrices, rhs)
    error = (x - expected).norm(dim=1) / expected.norm(dim=1)
    assert error.max() < 100 * tol
    assert info.iterations.shape == info.residual_norm.shape == (3,)
    assert x.dtype == dtype and x.shape == rhs.shape


def test_structured_tensors_and_x0():
    """The batch dimension leads, the rest of the shape is arbitrary; x0 warm-starts."""
    matrices, rhs = _problem(torch.complex128, batch=2, n=12)
    op = _matvec(matrices)
    image_op = lambda x: op(x.reshape(2, 12)).reshape(2, 1, 3, 4)  # noqa: E731
    x, info = conjugate_gradient(image_op, rhs.reshape(2, 1, 3, 4), tol=1e-12)
    expected = torch.linalg.solve(matrices, rhs)
    torch.testing.assert_close(x.reshape(2, 12), expected, rtol=1e-9, atol=1e-11)
    assert bool(info.converged.all())
    x_warm, warm = conjugate_gradient(image_op, rhs.reshape(2, 1, 3, 4), x0=x, tol=1e-8)
    assert warm.iterations.tolist() == [0, 0]
    torch.testing.assert_close(x_warm, x)


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_per_sample_convergence(dtype):
    """One easy sample (2 I: one iteration) and one ill-conditioned sample in the same batch: the
    easy one stops after its iteration and is not changed by the hard one's later iterations."""
    generator = torch.Generator().manual_seed(1)
    n = 30
    easy = 2 * torch.eye(n, dtype=dtype)
    real = torch.empty((), dtype=dtype).real.dtype
    hard = _hpd(torch.logspace(0, 4, n, dtype=real), dtype, generator)
    matrices = torch.stack([easy, hard])
    rhs = torch.randn(2, n, dtype=dtype, generator=generator)
    x, info = conjugate_gradient(_matvec(matrices), rhs, tol=1e-10, max_iter=500)
    assert info.iterations[0] == 1
    assert info.iterations[1] > 20
    assert bool(info.converged.all())
    assert bool((info.relative_residual <= 1e-10).all())
    torch.testing.assert_close(x[0], rhs[0] / 2, rtol=0, atol=1e-15)
    torch.testing.assert_close(x[1], torch.linalg.solve(hard, rhs[1]), rtol=1e-6, atol=1e-8)
    # the hard sample alone takes the same path (up to rounding, which an ill-conditioned CG
    # amplifies into a few iterations more or less)
    alone, alone_info = conjugate_gradient(_matvec(hard[None]), rhs[1:], tol=1e-10, max_iter=500)
    assert abs(int(alone_info.iterations[0]) - int(info.iterations[1])) <= 5
    torch.testing.assert_close(alone[0], x[1], rtol=1e-6, atol=1e-8)
    # a budget that is too small leaves the hard sample unconverged, and says so
    with pytest.warns(ConvergenceWarning, match=r"1 of 2 samples.*sample 1 .* after 5 iter"):
        _, short = conjugate_gradient(_matvec(matrices), rhs, tol=1e-10, max_iter=5)
    assert short.converged.tolist() == [True, False] and short.iterations.tolist() == [1, 5]


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_damping(dtype):
    matrices, rhs = _problem(dtype, batch=2, n=10)
    identity = torch.eye(10, dtype=dtype)
    x, _ = conjugate_gradient(_matvec(matrices), rhs, damping=0.7, tol=1e-13)
    torch.testing.assert_close(x, torch.linalg.solve(matrices + 0.7 * identity, rhs))
    per_sample = torch.tensor([0.0, 3.0])
    x, _ = conjugate_gradient(_matvec(matrices), rhs, damping=per_sample, tol=1e-13)
    damped = matrices + per_sample[:, None, None] * identity
    torch.testing.assert_close(x, torch.linalg.solve(damped, rhs))


def test_zero_rhs_and_input_errors():
    matrices, rhs = _problem(torch.float64, batch=2, n=4)
    x, info = conjugate_gradient(_matvec(matrices), torch.zeros_like(rhs))
    assert torch.equal(x, torch.zeros_like(rhs)) and info.iterations.tolist() == [0, 0]
    with pytest.raises(ValueError, match=r"x0 must match rhs.*\(2, 3\).*\(2, 4\)"):
        conjugate_gradient(_matvec(matrices), rhs, x0=torch.zeros(2, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="damping must be"):
        conjugate_gradient(_matvec(matrices), rhs, damping=-1.0)
    with pytest.raises(ValueError, match=r"one value per sample \(2,\), got shape \(3,\)"):
        conjugate_gradient(_matvec(matrices), rhs, damping=torch.ones(3))


@pytest.mark.parametrize("backward", ["autograd", "implicit"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_gradients_match_the_direct_solve(dtype, backward):
    """Backpropagation through the CG iterations, and the implicit backward (a second CG solve),
    give the gradients of the exact solution with respect to the right-hand side, the operator's
    entries and the damping."""
    matrices, rhs = _problem(dtype, batch=2, n=6, condition=20.0, seed=3)
    weights = torch.randn(2, 6, dtype=dtype, generator=torch.Generator().manual_seed(4))

    def loss_and_grads(solve):
        m = matrices.clone().requires_grad_(True)
        b = rhs.clone().requires_grad_(True)
        lam = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
        x = solve(m, b, lam)
        loss = (weights.conj() * x).real.sum() + x.abs().square().sum()
        return torch.autograd.grad(loss, (m, b, lam))

    # CG only sees Hermitian operators, so compare derivatives along Hermitian perturbations:
    # both solvers get the Hermitian part of m.
    def by_cg(m, b, lam):
        hermitian = (m + m.mH) / 2
        return conjugate_gradient(
            _matvec(hermitian), b, damping=lam, tol=1e-14, max_iter=50, backward=backward
        )[0]

    def by_solve(m, b, lam):
        return torch.linalg.solve((m + m.mH) / 2 + lam * torch.eye(6, dtype=dtype), b)

    for ours, theirs in zip(loss_and_grads(by_cg), loss_and_grads(by_solve), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-7, atol=1e-9)


def _dense(system, shape, dtype):
    """The matrix of a System (columns = images of the basis vectors) for a tiny input shape."""
    n = int(torch.tensor(shape).prod())
    basis = torch.eye(n, dtype=dtype).reshape(n, *shape)
    columns = [system(basis[i][None]).flatten() for i in range(n)]
    return torch.stack(columns, dim=1)


def test_least_squares_fully_sampled_recovers_x_exactly():
    generator = torch.Generator().manual_seed(5)
    maps = torch.randn(2, 4, 10, 8, dtype=torch.complex128, generator=generator)
    system = MultiCoilMRI(maps, torch.ones(2, 1, 1, 8, dtype=torch.float64))
    x = torch.randn(2, 1, 10, 8, dtype=torch.complex128, generator=generator)
    x_hat, info = least_squares(system, system(x), tol=1e-12, max_iter=200)
    torch.testing.assert_close(x_hat, x, rtol=1e-9, atol=1e-10)
    assert bool(info.converged.all())
    single = SingleCoilMRI(torch.ones(1, 1, 10, 8, dtype=torch.float64))
    x_hat, info = least_squares(single, single(x))
    torch.testing.assert_close(x_hat, x)
    assert info.iterations.tolist() == [1, 1]  # A^H A = I


def test_least_squares_matches_the_closed_form_on_a_dense_matrix():
    """Tikhonov: x = (A^H A + lam I)^-1 A^H y; lam = 0 on an undersampled system: pinv(A) y."""
    generator = torch.Generator().manual_seed(6)
    dtype = torch.complex128
    maps = torch.randn(1, 2, 4, 3, dtype=dtype, generator=generator)
    mask = torch.tensor([[[[1.0, 0.0, 1.0]]]], dtype=torch.float64)
    system = MultiCoilMRI(maps, mask)
    matrix = _dense(system, (1, 4, 3), dtype)  # (2 coils * 12) x 12
    y = torch.randn(1, 2, 4, 3, dtype=dtype, generator=generator) * mask
    for lam in (0.5, 1e-3):
        x, info = least_squares(system, y, damping=lam, tol=1e-13, max_iter=100)
        normal = matrix.mH @ matrix + lam * torch.eye(12, dtype=dtype)
        expected = torch.linalg.solve(normal, matrix.mH @ y.flatten())
        torch.testing.assert_close(x.flatten(), expected, rtol=1e-9, atol=1e-11)
        assert bool(info.converged.all())
    # a single coil with a mask is rank-deficient: CG from 0 gives the minimum-norm solution
    single = SingleCoilMRI(torch.tensor([[[[1.0, 0.0, 1.0]]]], dtype=torch.float64))
    matrix = _dense(single, (1, 4, 3), dtype)
    y = torch.randn(1, 1, 4, 3, dtype=dtype, generator=generator)
    x, _ = least_squares(single, y, tol=1e-13)
    torch.testing.assert_close(x.flatten(), torch.linalg.pinv(matrix) @ y.flatten())


def _saved_bytes(fn) -> int:
    """Bytes of the tensors autograd saves for the backward pass while ``fn`` runs."""
    saved = {}

    def pack(tensor):
        saved[id(tensor)] = tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        fn()
    return sum(saved.values())


def test_implicit_backward_memory_does_not_grow_with_iterations():
    """Autograd keeps every iterate; the implicit backward keeps one operator application. Both
    give the same gradient, and the backward solve is reported through ``on_backward``."""
    matrices, rhs = _problem(torch.complex128, batch=2, n=40, condition=1e4, seed=5)
    matrices.requires_grad_(True)

    def op(x):  # a Hermitian parametrisation, as in test_gradients_match_the_direct_solve
        return _matvec((matrices + matrices.mH) / 2)(x)

    def run(backward, max_iter, infos=None):
        def step():
            x, _ = conjugate_gradient(
                op,
                rhs,
                tol=1e-13,
                max_iter=max_iter,
                backward=backward,
                on_failure="ignore",
                on_backward=None if infos is None else infos.append,
            )
            x.abs().square().sum().backward()

        return step

    implicit = [_saved_bytes(run("implicit", k)) for k in (5, 40)]
    unrolled = [_saved_bytes(run("autograd", k)) for k in (5, 40)]
    assert implicit[0] == implicit[1]
    assert unrolled[1] > 4 * unrolled[0] > 4 * implicit[0] / 2

    infos = []
    matrices.grad = None
    run("implicit", 200, infos)()
    implicit_grad = matrices.grad.clone()
    matrices.grad = None
    run("autograd", 200)()
    torch.testing.assert_close(implicit_grad, matrices.grad, rtol=1e-6, atol=1e-9)
    assert len(infos) == 1 and bool(infos[0].converged.all()) and infos[0].iterations.min() > 10


def test_implicit_backward_of_a_learned_damping_in_an_image_problem():
    """MoDL's setting: x = (A^H A + lam I)^{-1}(A^H y + lam z) with an MRI System; the two
    backward modes agree for lam and for z (a network output)."""
    system, _ = MultiCoilMRI.example(batch_size=2, dtype=torch.complex128)
    generator = torch.Generator().manual_seed(0)
    x_true = torch.randn(2, 1, 8, 7, dtype=torch.complex128, generator=generator)
    y = system(x_true)

    def grads(backward):
        lam = torch.tensor(0.05, dtype=torch.float64, requires_grad=True)
        z = (0.5 * x_true).requires_grad_(True)
        x, _ = conjugate_gradient(
            system.normal,
            system.adjoint(y) + lam * z,
            damping=lam,
            tol=1e-13,
            max_iter=100,
            backward=backward,
        )
        loss = (x - x_true).abs().square().sum()
        return torch.autograd.grad(loss, (lam, z))

    for ours, theirs in zip(grads("implicit"), grads("autograd"), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-7, atol=1e-10)


def test_non_finite_and_missed_tolerance_are_reported():
    matrices, rhs = _problem(torch.float64, batch=2, n=8, condition=1e3)
    bad = rhs.clone()
    bad[1, 0] = float("nan")
    with pytest.raises(ConvergenceError, match=r"non-finite residual \(nan\) for sample 1"):
        conjugate_gradient(_matvec(matrices), bad)
    with pytest.raises(ConvergenceError, match="did not reach tol=1e-12"):
        conjugate_gradient(_matvec(matrices), rhs, tol=1e-12, max_iter=2, on_failure="raise")
    with pytest.raises(ConvergenceError, match="non-finite"):  # whatever on_failure says
        conjugate_gradient(_matvec(matrices), bad, on_failure="ignore")
    _, info = conjugate_gradient(_matvec(matrices), rhs, tol=1e-12, max_iter=2, on_failure="ignore")
    assert not bool(info.converged.any())
    with pytest.raises(ValueError, match="backward must be"):
        conjugate_gradient(_matvec(matrices), rhs, backward="adjoint")
    with pytest.raises(ValueError, match="on_failure must be"):
        conjugate_gradient(_matvec(matrices), rhs, on_failure="silent")
