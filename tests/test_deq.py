"""Fixed-point solvers, the deep-equilibrium block and spectral normalisation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from deepinv_lab.models.spectral import spectral_normalize
from deepinv_lab.optim.convergence import (
    ConvergenceError,
    ConvergenceWarning,
    reset_convergence_warnings,
)
from deepinv_lab.optim.deq import DeepEquilibrium
from deepinv_lab.optim.fixed_point import anderson, picard, solve_fixed_point

F64 = torch.float64


def _tanh_map(n=24, batch=3, dtype=F64, norm=0.95, seed=0):
    """``x -> act(W x) + b`` with a symmetric ``W`` of spectral norm ``norm`` (slow for Picard,
    where Anderson shines); ``act`` is tanh, or its modulus version for complex."""
    gen = torch.Generator().manual_seed(seed)
    real = torch.randn(n, n, generator=gen, dtype=F64)
    weight = real + real.T
    if dtype.is_complex:
        imag = torch.randn(n, n, generator=gen, dtype=F64)
        weight = torch.complex(weight, imag - imag.T)  # Hermitian
    weight = norm * weight / torch.linalg.matrix_norm(weight, 2)
    bias = torch.randn(batch, n, generator=gen, dtype=dtype)
    return weight, bias


def _act(v):
    return torch.sgn(v) * torch.tanh(v.abs()) if v.is_complex() else torch.tanh(v)


def _conv_net(seed=0, scale=0.3):
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(2, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 2, 3, padding=1)
    ).double()
    spectral_normalize(net, scale=scale, n_power_iterations=30)
    net(torch.zeros(1, 2, 4, 4, dtype=F64))  # converge the power iterations, then freeze them
    return net.eval()


@pytest.fixture(autouse=True)
def _fresh_warning_counts():
    """Convergence warnings are rate-limited per solver name: let every test see its first."""
    reset_convergence_warnings()
    yield
    reset_convergence_warnings()


# --- fixed-point solvers ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [F64, torch.complex128])
def test_anderson_and_picard_agree_and_anderson_is_faster(dtype):
    weight, bias = _tanh_map(dtype=dtype)

    def f(x):
        return _act(x @ weight.T) + bias

    x0 = torch.zeros_like(bias)
    x_p, info_p = picard(f, x0, tol=1e-10, max_iter=1000)
    x_a, info_a = anderson(f, x0, tol=1e-10, max_iter=1000)
    assert x_a.dtype == dtype and x_a.shape == bias.shape
    assert bool(info_p.converged.all()) and bool(info_a.converged.all())
    torch.testing.assert_close(x_a, x_p, rtol=0, atol=1e-8)
    torch.testing.assert_close(f(x_a), x_a, rtol=0, atol=1e-8)
    assert bool((info_a.iterations < 0.8 * info_p.iterations).all())
    assert len(info_a.history) == int(info_a.iterations.max()) + 1
    assert info_a.history[-1] <= 1e-10 < info_a.history[0]


def test_solvers_on_spectrally_normalised_conv_net():
    net = _conv_net(scale=1.2)  # contractive in practice (the bound is (3 * 1.2)^2)
    b = torch.randn(2, 2, 6, 5, dtype=F64)

    def f(x):
        return net(x) + b

    x_p, info_p = solve_fixed_point(f, torch.zeros_like(b), "picard", tol=1e-9, max_iter=500)
    x_a, info_a = solve_fixed_point(f, torch.zeros_like(b), "anderson", tol=1e-9, max_iter=500)
    torch.testing.assert_close(x_a, x_p, rtol=0, atol=1e-7)
    assert int(info_a.iterations.max()) < 0.5 * int(info_p.iterations.max())


@pytest.mark.parametrize("solver", [picard, anderson])
def test_per_sample_stopping_freezes_converged_samples(solver):
    weight, bias = _tanh_map(batch=2)
    # Sample 0 is strongly contractive (easy), sample 1 barely (hard).
    gain = torch.tensor([[0.05], [1.0]], dtype=F64)

    def f(x):
        return gain * _act(x @ weight.T) + bias

    x, info = solver(f, torch.zeros_like(bias), tol=1e-8, max_iter=1000)
    assert bool(info.converged.all())
    assert int(info.iterations[0]) < int(info.iterations[1])

    def f_easy(x):
        return gain[:1] * _act(x @ weight.T) + bias[:1]

    alone, info_alone = solver(f_easy, torch.zeros_like(bias[:1]), tol=1e-8, max_iter=1000)
    assert int(info_alone.iterations[0]) == int(info.iterations[0])
    torch.testing.assert_close(x[:1], alone, rtol=0, atol=1e-13)


def test_x0_at_the_fixed_point_takes_no_iteration():
    b = torch.randn(3, 4, dtype=F64)
    x, info = anderson(lambda x: 0.5 * x + b, 2 * b, tol=1e-12)
    assert info.iterations.tolist() == [0, 0, 0] and torch.equal(x, 2 * b)


def test_missed_tolerance_warns_with_iterations_and_residual():
    weight, bias = _tanh_map()
    with pytest.warns(ConvergenceWarning, match=r"residual .* after 3 iterations"):
        _, info = solve_fixed_point(
            lambda x: _act(x @ weight.T) + bias, torch.zeros_like(bias), tol=1e-12, max_iter=3
        )
    assert not bool(info.converged.any()) and info.iterations.tolist() == [3, 3, 3]
    with pytest.raises(ConvergenceError):
        solve_fixed_point(
            lambda x: _act(x @ weight.T) + bias,
            torch.zeros_like(bias),
            tol=1e-12,
            max_iter=3,
            on_failure="raise",
        )


@pytest.mark.parametrize("solver", ["anderson", "picard"])
def test_nan_map_raises(solver):
    x0 = torch.ones(2, 3)
    with pytest.raises(ConvergenceError, match="non-finite"):
        solve_fixed_point(lambda x: x * float("nan"), x0, solver)
    with pytest.raises(ConvergenceError, match="non-finite"):  # NaN only in a later iterate
        solve_fixed_point(lambda x: torch.where(x > 1.5, float("nan"), 2 * x), x0, solver)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"tol": -1.0}, "tol"),
        ({"max_iter": 0}, "max_iter"),
        ({"max_iter": 2.5}, "max_iter"),
        ({"memory": 0}, "memory"),
        ({"relaxation": 0.0}, "relaxation"),
        ({"relaxation": 1.5}, "relaxation"),
        ({"regularization": -1.0}, "regularization"),
        ({"solver": "newton"}, "solver"),
        ({"on_failure": "shout"}, "on_failure"),
    ],
)
def test_solve_fixed_point_rejects_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        solve_fixed_point(lambda x: x, torch.zeros(1, 2), **kwargs)


def test_map_changing_shape_is_rejected():
    with pytest.raises(ValueError, match="shape"):
        picard(lambda x: x[:, :1], torch.zeros(2, 3))
    with pytest.raises(ValueError, match="batch dimension"):
        anderson(lambda x: x, torch.tensor(1.0))


# --- deep equilibrium ------------------------------------------------------------------------


def _deq_problem(dtype=F64, n=12, batch=2):
    """Parameters ``W`` and input ``y`` (both requiring grad) of ``f(x) = act(W x) + y``."""
    weight, bias = _tanh_map(n=n, batch=batch, dtype=dtype, norm=0.6)
    weight = weight.clone().requires_grad_()
    y = bias.clone().requires_grad_()

    def make_f(w, y_):
        return lambda x: _act(x @ w.T) + y_

    return weight, y, make_f


def _loss(x, target):
    return (x - target).abs().pow(2).sum() + (x * target.conj()).real.sum()


@pytest.mark.parametrize("dtype", [F64, torch.complex128])
@pytest.mark.parametrize("solver", ["anderson", "picard"])
def test_implicit_gradient_equals_long_unrolled_gradient(dtype, solver):
    weight, y, make_f = _deq_problem(dtype)
    target = torch.randn_like(y)
    f = make_f(weight, y)
    deq = DeepEquilibrium(solver=solver, tol=1e-12, max_iter=300)
    out = deq(f, torch.zeros_like(y))
    grads = torch.autograd.grad(_loss(out, target), (weight, y))

    x = torch.zeros_like(y)
    for _ in range(200):
        x = f(x)
    torch.testing.assert_close(out, x, rtol=0, atol=1e-10)
    unrolled = torch.autograd.grad(_loss(x, target), (weight, y))
    for ours, reference in zip(grads, unrolled, strict=True):
        torch.testing.assert_close(ours, reference, rtol=1e-6, atol=1e-9)


def test_implicit_gradient_passes_gradcheck():
    weight, y, make_f = _deq_problem(n=4, batch=2)
    deq = DeepEquilibrium(solver="picard", tol=1e-15, max_iter=500, on_failure="ignore")

    def run(w, y_):
        return deq(make_f(w, y_), torch.zeros_like(y_))

    assert torch.autograd.gradcheck(run, (weight, y), eps=1e-6, atol=1e-8, rtol=1e-6)


def test_implicit_gradient_through_conv_net_parameters():
    net = _conv_net(scale=0.5)
    y = torch.randn(2, 2, 5, 4, dtype=F64, requires_grad=True)

    def f(x):
        return net(x) + y

    deq = DeepEquilibrium(tol=1e-12, max_iter=300)
    out = deq(f, torch.zeros_like(y))
    out.square().sum().backward()
    x = torch.zeros_like(y)
    for _ in range(60):
        x = f(x)
    params = [p for p in net.parameters()] + [y]
    reference = torch.autograd.grad(x.square().sum(), params)
    for p, r in zip(params, reference, strict=True):
        torch.testing.assert_close(p.grad, r, rtol=1e-6, atol=1e-9)


def test_jfb_gradient_is_the_one_step_gradient_at_the_fixed_point():
    weight, y, make_f = _deq_problem()
    target = torch.randn_like(y)
    f = make_f(weight, y)
    jfb = DeepEquilibrium(tol=1e-12, max_iter=300, backward="jfb")
    out = jfb(f, torch.zeros_like(y))
    g_jfb = torch.autograd.grad(_loss(out, target), (weight, y))
    assert jfb.last_backward_info is None and "deq/backward_iterations" not in jfb.diagnostics()

    with torch.no_grad():
        x_star, _ = anderson(f, torch.zeros_like(y), tol=1e-12, max_iter=300)
    one_step = torch.autograd.grad(_loss(f(x_star), target), (weight, y))
    implicit = DeepEquilibrium(tol=1e-12, max_iter=300)
    g_implicit = torch.autograd.grad(_loss(implicit(f, torch.zeros_like(y)), target), (weight, y))
    for ours, step, exact in zip(g_jfb, one_step, g_implicit, strict=True):
        torch.testing.assert_close(ours, step, rtol=1e-9, atol=1e-10)
        assert (ours - exact).norm() > 1e-3 * exact.norm()


def test_eval_returns_the_fixed_point_without_graph_and_diagnostics_are_filled():
    weight, y, make_f = _deq_problem()
    deq = DeepEquilibrium(tol=1e-10)
    assert list(deq.parameters()) == [] and list(deq.buffers()) == []
    with torch.no_grad():
        x = deq(make_f(weight, y), torch.zeros_like(y))
    assert not x.requires_grad
    stats = deq.diagnostics()
    assert set(stats) == {"deq/iterations", "deq/relative_residual"}
    assert stats["deq/relative_residual"] <= 1e-10 and stats["deq/iterations"] > 0
    assert stats == deq.last_info.summary("deq/")

    out = deq(make_f(weight, y), torch.zeros_like(y))
    assert out.requires_grad and "deq/backward_iterations" not in deq.diagnostics()
    out.sum().backward()
    stats = deq.diagnostics()
    assert stats["deq/backward_iterations"] > 0 and stats["deq/backward_relative_residual"] <= 1e-10
    assert float(deq.last_backward_info.relative_residual.max()) <= 1e-10
    assert weight.grad is not None and y.grad is not None


def test_deq_warns_when_a_solve_misses_its_tolerance():
    weight, y, make_f = _deq_problem()
    deq = DeepEquilibrium(tol=1e-12, max_iter=2, backward_max_iter=50)
    with pytest.warns(ConvergenceWarning, match=r"forward \(anderson\).* after 2 iterations"):
        out = deq(make_f(weight, y), torch.zeros_like(y))
    deq.backward_max_iter = 1
    with pytest.warns(ConvergenceWarning, match=r"backward \(anderson\).* after 1 iterations"):
        out.sum().backward()


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"solver": "broyden"}, "solver"),
        ({"backward": "unrolled"}, "backward"),
        ({"backward_solver": "cg"}, "backward_solver"),
        ({"tol": -1.0}, "tol"),
        ({"backward_tol": -1.0}, "backward_tol"),
        ({"backward_max_iter": 0}, "backward_max_iter"),
        ({"anderson_memory": 0}, "memory"),
        ({"relaxation": 2.0}, "relaxation"),
        ({"on_failure": "maybe"}, "on_failure"),
    ],
)
def test_deq_rejects_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        DeepEquilibrium(**kwargs)


# --- spectral normalisation ------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_spectral_normalize_sets_the_largest_singular_value(scale):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(2, 6, 3, padding=1),
        nn.ReLU(),
        nn.ConvTranspose2d(6, 4, 3, padding=1),
        nn.Flatten(),
        nn.Linear(4 * 5 * 5, 3),
    )
    assert spectral_normalize(model, scale=scale) is model
    x = torch.randn(2, 2, 5, 5)
    model.train()
    for _ in range(30):  # one power iteration per forward pass in train mode
        model(x)
    matrices = {
        "conv": model[0].weight.flatten(1),
        "transposed": model[2].weight.transpose(0, 1).flatten(1),
        "linear": model[4].weight,
    }
    for name, matrix in matrices.items():
        sigma = float(torch.linalg.matrix_norm(matrix.detach(), 2))
        assert sigma == pytest.approx(scale, rel=1e-3), name
    model.eval()
    assert model(x).shape == (2, 3)
    assert all(p.grad is None for p in model.parameters())
    model(x).sum().backward()
    assert model[0].parametrizations.weight.original.grad is not None


def test_spectral_normalize_rejects_bad_arguments():
    with pytest.raises(ValueError, match="scale"):
        spectral_normalize(nn.Linear(2, 2), scale=0.0)
    with pytest.raises(ValueError, match="n_power_iterations"):
        spectral_normalize(nn.Linear(2, 2), n_power_iterations=0)
    layer = spectral_normalize(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="already parametrized"):
        spectral_normalize(layer)
