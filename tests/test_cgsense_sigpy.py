"""CGSense against SigPy's ``sigpy.mri.app.SenseRecon``, the reference CG-SENSE, plus the Recon's
batching, output and learned-damping behaviour.

What SigPy solves (``SenseRecon`` -> ``LinearLeastSquares`` with ``solver="ConjugateGradient"``):
``A = Sense(mps, weights=w) = sqrt(w) F S`` and ``y <- sqrt(w) y``; CG on the normal equations
``(A^H A + lamda I) x = A^H y`` from ``x = 0``, which is ``argmin 1/2 ||A x - y||^2 +
lamda/2 ||x||^2`` -- the same minimiser as our ``||A x - y||^2 + lam ||x||^2`` with ``lam = lamda``.
SigPy stops when ``sqrt(r^H r) <= tol`` with an *absolute* ``tol`` (default 0: run all
``max_iter`` iterations), ours when ``||r|| / ||A^H y|| <= tol``, so the reference below is given
``tol * ||A^H y||``. SigPy iterates in the dtype of ``y`` (its ``x`` starts as
``zeros(dtype=y.dtype)``); both sides run in complex128 here, except where stated.

CGSense stores ``log lam`` as a float32 parameter, so even a complex128 solve uses ``lam`` rounded
to float32 (relative error ~6e-8): its residual is checked with ``recon.damping``, the value used.
"""

import numpy as np
import pytest
import torch

sp = pytest.importorskip("sigpy")
import sigpy.mri  # noqa: E402
import sigpy.mri.app  # noqa: E402

from deepinv_lab.data.presets import SimulatedBrainMRIDataModule  # noqa: E402
from deepinv_lab.recons.cg_sense import CGSense  # noqa: E402
from deepinv_lab.systems.mri import MultiCoilMRI  # noqa: E402

DAMPINGS = [1e-3, 1e-1]
TOL = 1e-10


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def brain() -> dict[str, torch.Tensor]:
    """Two validation slices, 8 coils, 56 x 48 (downsample 4), stacked as a batch, complex128."""
    dataset = SimulatedBrainMRIDataModule(downsample=4, num_coils=8).val_set
    items = [dataset[0], dataset[1]]
    batch = {key: torch.stack([item[key] for item in items]) for key in ("y", "coil_maps", "mask")}
    batch["y"] = batch["y"].to(torch.complex128)
    batch["coil_maps"] = batch["coil_maps"].to(torch.complex128)
    batch["mask"] = batch["mask"].to(torch.float64)
    batch["target"] = torch.stack([item["target"] for item in items]).to(torch.float64)
    return batch


def _random_problem(seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    coils, height, width = 4, 12, 10
    shape = (1, coils, height, width)
    maps = torch.randn(shape, dtype=torch.complex128, generator=generator) / coils**0.5
    mask = (torch.rand(1, 1, 1, width, generator=generator, dtype=torch.float64) < 0.5).double()
    mask[..., width // 2 - 1 : width // 2 + 1] = 1.0
    y = mask * torch.randn(shape, dtype=torch.complex128, generator=generator)
    return {"y": y, "coil_maps": maps, "mask": mask}


def _problem(name: str, brain: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if name == "brain":
        return {key: brain[key][:1] for key in ("y", "coil_maps", "mask")}
    return _random_problem()


def _relative_residual(system: MultiCoilMRI, y, x: torch.Tensor, damping: float) -> float:
    """``||A^H y - (A^H A + lam I) x|| / ||A^H y||``, computed directly (not from a recursion)."""
    rhs = system.adjoint(y)
    return float((rhs - system.normal(x) - damping * x).norm() / rhs.norm())


def _sigpy_sense(y, maps, weights, damping: float, tol: float = TOL) -> tuple[np.ndarray, int]:
    """One slice through ``SenseRecon``, stopped at the same relative residual as ours."""
    y_np, maps_np, weights_np = y.numpy(), maps.numpy(), weights.numpy()
    rhs = sigpy.mri.linop.Sense(maps_np, weights=weights_np).H(y_np * weights_np**0.5)
    app = sigpy.mri.app.SenseRecon(
        y_np,
        maps_np,
        lamda=damping,
        weights=weights_np,
        max_iter=2000,
        tol=tol * float(np.linalg.norm(rhs)),
        show_pbar=False,
    )
    x = app.run()
    return x, app.alg.iter


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("damping", DAMPINGS)
@pytest.mark.parametrize("data", ["brain", "random"])
def test_cgsense_matches_sigpy_sense_recon(data, damping, brain):
    problem = _problem(data, brain)
    y, maps, mask = problem["y"], problem["coil_maps"], problem["mask"]
    system = MultiCoilMRI(maps, mask)
    recon = CGSense(damping=damping, tol=TOL, max_iter=2000, magnitude=False, on_failure="raise")
    with torch.no_grad():
        ours = recon(y, system)
    reference_np, sigpy_iterations = _sigpy_sense(y[0], maps[0], mask[0], damping)
    assert reference_np.dtype == np.complex128 and reference_np.shape == y.shape[-2:]
    reference = torch.from_numpy(reference_np)[None, None]

    # Both reached the normal equations' solution (checked directly, not by the recursions) ...
    assert _relative_residual(system, y, ours, float(recon.damping)) < 1e-8
    assert _relative_residual(system, y, reference, damping) < 1e-8
    # ... with the same CG: same iteration count up to the last one or two.
    assert abs(int(recon.last_info.iterations[0]) - sigpy_iterations) <= 2
    assert _relative(ours, reference) < 1e-6  # the brief asks < 1e-3; float64 gives far better

    # Our complex64 solve (the dtype of the data) against SigPy's complex128 one.
    system64 = MultiCoilMRI(maps.to(torch.complex64), mask.float())
    recon.tol = 1e-6
    with torch.no_grad():
        ours64 = recon(y.to(torch.complex64), system64)
    assert ours64.dtype == torch.complex64
    assert _relative(ours64.to(torch.complex128), reference) < 1e-3


class _Generic:
    """``A^H A`` as ``adjoint(forward(x))``: MultiCoilMRI's fast ``normal`` assumes a 0/1 mask."""

    def __init__(self, system: MultiCoilMRI):
        self.system = system

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.system.adjoint(y)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        return self.system.adjoint(self.system(x))


def _soft_weights(width: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(2)
    return 0.1 + 0.9 * torch.rand(1, 1, 1, width, generator=generator, dtype=torch.float64)


def test_sigpy_weights_are_square_rooted():
    """SigPy's soft ``weights=w`` scale both ``A`` and ``y`` by ``sqrt(w)``: it is our ``M F S``
    with ``mask = sqrt(w)`` fed ``sqrt(w) * y``. Passing ``mask = w`` instead weights the data by
    ``w^2`` (the two agree only for 0/1 masks)."""
    problem = _random_problem(seed=1)
    y, maps = problem["y"], problem["coil_maps"]
    weights = _soft_weights(y.shape[-1])
    reference_np, _ = _sigpy_sense(y[0], maps[0], weights[0], 1e-2)
    reference = torch.from_numpy(reference_np)[None, None]
    recon = CGSense(damping=1e-2, tol=TOL, max_iter=2000, magnitude=False, on_failure="raise")
    with torch.no_grad():
        matched = recon(weights.sqrt() * y, _Generic(MultiCoilMRI(maps, weights.sqrt())))
        naive = recon(y, _Generic(MultiCoilMRI(maps, weights)))
    assert _relative(matched, reference) < 1e-6
    assert _relative(naive, reference) > 1e-2


def test_multicoil_normal_with_soft_mask_is_adjoint_of_forward():
    problem = _random_problem(seed=1)
    system = MultiCoilMRI(problem["coil_maps"], _soft_weights(problem["y"].shape[-1]))
    x = torch.randn(1, 1, *problem["y"].shape[-2:], dtype=torch.complex128)
    assert _relative(system.normal(x), system.adjoint(system(x))) < 1e-12


def test_batch_equals_each_slice_alone(brain):
    system = MultiCoilMRI(brain["coil_maps"], brain["mask"])
    recon = CGSense(damping=1e-2, tol=TOL, max_iter=2000, magnitude=False, on_failure="raise")
    with torch.no_grad():
        together = recon(brain["y"], system)
        iterations = recon.last_info.iterations.clone()
        for b in range(2):
            alone = recon(
                brain["y"][b : b + 1],
                MultiCoilMRI(brain["coil_maps"][b : b + 1], brain["mask"][b : b + 1]),
            )
            assert _relative(together[b : b + 1], alone) < 1e-12
            assert int(iterations[b]) == int(recon.last_info.iterations[0])
    assert _relative(together[0], together[1]) > 0.1  # the slices really differ


def test_magnitude_output(brain):
    system = MultiCoilMRI(brain["coil_maps"], brain["mask"])
    with torch.no_grad():
        magnitude = CGSense(damping=1e-2, tol=1e-8)(brain["y"], system)
        complex_x = CGSense(damping=1e-2, tol=1e-8, magnitude=False)(brain["y"], system)
    assert magnitude.shape == (2, 1, *brain["y"].shape[-2:]) == complex_x.shape
    assert magnitude.dtype == torch.float64 and complex_x.dtype == torch.complex128
    torch.testing.assert_close(magnitude, complex_x.abs())


@pytest.mark.parametrize("damping", [0.0, -1e-3, -1])
def test_nonpositive_damping_raises(damping):
    with pytest.raises(ValueError, match="damping"):
        CGSense(damping=damping)


def test_learned_damping_gradient_implicit_equals_autograd(brain):
    y = brain["y"][:1]
    system = MultiCoilMRI(brain["coil_maps"][:1], brain["mask"][:1])
    target = brain["target"][:1]
    assert not CGSense(damping=1e-2).log_damping.requires_grad
    gradients = {}
    for backward in ("implicit", "autograd"):
        recon = CGSense(damping=1e-2, learn_damping=True, tol=TOL, max_iter=2000, backward=backward)
        parameters = dict(recon.named_parameters())
        assert list(parameters) == ["log_damping"] and parameters["log_damping"].requires_grad
        loss = (recon(y, system) - target).square().mean()
        loss.backward()
        gradient = recon.log_damping.grad
        assert gradient is not None and torch.isfinite(gradient) and gradient != 0
        gradients[backward] = gradient.clone()
    relative = (gradients["implicit"] - gradients["autograd"]).abs() / gradients["autograd"].abs()
    assert float(relative) < 1e-5
