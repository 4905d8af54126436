"""Total variation: the circular finite difference against SigPy's ``FiniteDifference``, and
:class:`TVRecon` / :func:`pdhg` against SigPy's ``TotalVariationRecon``.

SigPy's ``TotalVariationRecon(y, mps, lamda, weights=mask)`` minimises
``1/2 ||sqrt(w) (F S x - y)||^2 + lamda ||G x||_1`` (anisotropic: ``L1Reg`` on each gradient entry)
by PDHG on ``K = [A; G]`` with ``sigma = 1`` and ``tau = 1 / L``, ``L`` from 30 power iterations
from an unseeded random vector. Given the same ``tau`` our ``isotropic=False`` iterates equal
SigPy's to round-off (measured relative difference 2.6e-16 after 50 iterations); with each side's
own estimate of ``L`` (ours 8.40, SigPy's 8.32 here) they differ by ~2e-3. The isotropic norm is
checked against SigPy's same solver given the ``l_{1,2}`` proximal operator.
"""

import numpy as np
import pytest
import torch

from deepinv_lab.errors import UserError
from deepinv_lab.functional.gradient import (
    finite_difference,
    finite_difference_adjoint,
    total_variation,
)
from deepinv_lab.optim.pdhg import pdhg
from deepinv_lab.recons import TVRecon
from deepinv_lab.systems.coils import birdcage_maps
from deepinv_lab.systems.mri import MultiCoilMRI

LAMDA = 0.02
SIZE = 32
ITERATIONS = 50


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def problem() -> dict[str, torch.Tensor]:
    """4 birdcage coils, 32 x 32, random columns plus 6 centre columns, complex128."""
    generator = torch.Generator().manual_seed(0)
    maps = birdcage_maps(4, (SIZE, SIZE), dtype=torch.complex128)[None]
    mask = (torch.rand(1, 1, 1, SIZE, generator=generator, dtype=torch.float64) < 0.3).double()
    mask[..., SIZE // 2 - 3 : SIZE // 2 + 3] = 1.0
    axis = torch.linspace(-1, 1, SIZE, dtype=torch.float64)
    r, c = torch.meshgrid(axis, axis, indexing="ij")
    image = ((r.abs() < 0.5) & (c.abs() < 0.6)).double() + 0.5 * ((r**2 + c**2) < 0.1).double()
    image = (image * torch.exp(1j * (0.5 * r + 0.3 * c)))[None, None]
    system = MultiCoilMRI(maps, mask)
    noise = torch.randn(system(image).shape, dtype=torch.complex128, generator=generator)
    return {"y": mask * (system(image) + 0.01 * noise), "coil_maps": maps, "mask": mask}


def _objective(system, y, x, lamda: float, isotropic: bool) -> float:
    return float(
        0.5 * (system(x) - y).abs().square().sum() + lamda * total_variation(x, isotropic).sum()
    )


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def _sigpy_tv(problem, iterations: int, **kwargs) -> torch.Tensor:
    import sigpy.mri.app

    app = sigpy.mri.app.TotalVariationRecon(
        problem["y"][0].numpy(),
        problem["coil_maps"][0].numpy(),
        LAMDA,
        weights=problem["mask"][0].numpy(),
        max_iter=iterations,
        show_pbar=False,
        **kwargs,
    )
    return torch.from_numpy(app.run())[None, None]


def test_finite_difference_adjoint_complex_batched():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 7, 6, dtype=torch.complex128, generator=generator)
    g = torch.randn(2, 3, 2, 7, 6, dtype=torch.complex128, generator=generator)
    assert finite_difference(x).shape == (2, 3, 2, 7, 6)
    forward = torch.vdot(finite_difference(x).flatten(), g.flatten())
    adjoint = torch.vdot(x.flatten(), finite_difference_adjoint(g).flatten())
    assert abs(forward - adjoint) < 1e-12 * abs(forward)
    real = x.real
    assert torch.allclose(finite_difference(real), finite_difference(x).real)


def test_finite_difference_equals_sigpy():
    sp = pytest.importorskip("sigpy")
    x = torch.randn(5, 8, dtype=torch.complex128, generator=torch.Generator().manual_seed(1))
    operator = sp.linop.FiniteDifference(tuple(x.shape))
    g = torch.randn(2, 5, 8, dtype=torch.complex128, generator=torch.Generator().manual_seed(2))
    np.testing.assert_allclose(finite_difference(x).numpy(), operator(x.numpy()), atol=1e-14)
    np.testing.assert_allclose(
        finite_difference_adjoint(g).numpy(), operator.H(g.numpy()), atol=1e-14
    )


def test_anisotropic_tv_recon_equals_sigpy(problem):
    pytest.importorskip("sigpy")
    system = MultiCoilMRI(problem["coil_maps"], problem["mask"])
    recon = TVRecon(LAMDA, max_iter=ITERATIONS, magnitude=False, isotropic=False)
    with torch.no_grad():
        ours = recon(problem["y"], system)
    tau = float(recon.last_info.tau[0])
    # SigPy's own power iteration starts from an unseeded random vector: given our tau ...
    reference = _sigpy_tv(problem, ITERATIONS, sigma=1.0, tau=tau)
    assert _relative(ours, reference) < 1e-10  # measured 2.6e-16
    # ... and with its own, seeded here: the eigenvalue estimates differ by ~1%.
    np.random.seed(0)
    assert _relative(ours, _sigpy_tv(problem, ITERATIONS)) < 2e-2  # measured 2e-3
    assert set(recon.diagnostics()) == {"pdhg/iterations", "pdhg/relative_residual"}
    assert recon.diagnostics()["pdhg/iterations"] == ITERATIONS


def test_isotropic_equals_sigpy_solver_with_group_prox(problem):
    sp = pytest.importorskip("sigpy")
    import sigpy.mri.linop  # noqa: F401  (registers sp.mri)

    y, maps, mask = (problem[key][0].numpy() for key in ("y", "coil_maps", "mask"))
    system = MultiCoilMRI(problem["coil_maps"], problem["mask"])
    ours, info = pdhg(system, problem["y"], LAMDA, ITERATIONS)

    class GroupL1(sp.prox.Prox):
        """Proximal operator of ``lamda ||.||_{1,2}`` over the first (gradient) axis."""

        def _prox(self, alpha, v):
            magnitude = np.sqrt((np.abs(v) ** 2).sum(axis=0, keepdims=True))
            return v * np.maximum(1 - LAMDA * alpha / np.maximum(magnitude, 1e-300), 0)

    operator = sp.mri.linop.Sense(maps, weights=mask)
    gradient = sp.linop.FiniteDifference(operator.ishape)
    app = sp.app.LinearLeastSquares(
        operator,
        y * mask**0.5,
        proxg=GroupL1(gradient.oshape),
        G=gradient,
        max_iter=ITERATIONS,
        sigma=1.0,
        tau=float(info.tau[0]),
        show_pbar=False,
    )
    reference = torch.from_numpy(app.run())[None, None]
    assert _relative(ours, reference) < 1e-10


@pytest.mark.parametrize("isotropic", [True, False])
def test_objective_decreases_to_a_minimum(problem, isotropic):
    """PDHG is not monotone (after 20 iterations the objective is above that of ``A^H y``), but
    from 50 iterations on it decreases to a point no small perturbation improves."""
    system = MultiCoilMRI(problem["coil_maps"], problem["mask"])
    y = problem["y"]
    values = [_objective(system, y, system.adjoint(y), LAMDA, isotropic)]
    for iterations in (50, 200, 1000):
        x, _ = pdhg(system, y, LAMDA, iterations, isotropic=isotropic)
        values.append(_objective(system, y, x, LAMDA, isotropic))
    assert values == sorted(values, reverse=True) and values[-1] < 0.7 * values[0]
    generator = torch.Generator().manual_seed(3)
    for _ in range(5):
        step = 1e-3 * torch.randn(x.shape, dtype=x.dtype, generator=generator)
        assert _objective(system, y, x + step, LAMDA, isotropic) > values[-1] - 1e-6


def test_batch_equals_each_sample_alone(problem):
    maps = problem["coil_maps"].expand(2, -1, -1, -1)
    mask = torch.cat([problem["mask"], problem["mask"].flip(-1)])
    system = MultiCoilMRI(maps, mask)
    y = system(system.adjoint(problem["y"].expand(2, -1, -1, -1)))
    together, info = pdhg(system, y, LAMDA, 30)
    for b in range(2):
        single = MultiCoilMRI(maps[b : b + 1], mask[b : b + 1])
        alone, _ = pdhg(single, y[b : b + 1], LAMDA, 30)
        assert _relative(together[b : b + 1], alone) < 1e-12
    assert info.tau.shape == (2,)


def test_tolerance_stops_early(problem):
    system = MultiCoilMRI(problem["coil_maps"], problem["mask"])
    _, info = pdhg(system, problem["y"], LAMDA, 1000, tol=1e-3, on_failure="raise")
    assert bool(info.converged.all()) and int(info.iterations[0]) < 1000


@pytest.mark.parametrize("lamda", [-0.1, "0.1", True])
def test_bad_lamda_raises(lamda):
    with pytest.raises(UserError, match="lamda"):
        TVRecon(lamda=lamda)


def test_bad_steps_raise(problem):
    system = MultiCoilMRI(problem["coil_maps"], problem["mask"])
    with pytest.raises(UserError, match="lamda"):
        pdhg(system, problem["y"], -1.0)
    with pytest.raises(UserError, match="sigma and tau"):
        pdhg(system, problem["y"], LAMDA, sigma=-1.0, tau=0.1)
