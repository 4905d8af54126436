"""FISTA and L1WaveletRecon: closed forms, least squares, and SigPy's ``L1WaveletRecon``.

SigPy minimises ``1/2 ||sqrt(w) (F S x - y)||^2 + lamda ||W x||_1`` by accelerated proximal
gradient (``LinearLeastSquares`` -> ``GradientMethod(accelerate=True)``) with step ``1 / L``, ``L``
from a 30-step power iteration: our objective and solver, with a 0/1 mask ``w``. Its ``W`` is
``sigpy.linop.Wavelet`` (``pywt`` mode ``"zero"``, levels chosen from the image size), not our
orthogonal periodic DWT, so two comparisons are made:

* the same solver with our wavelet: SigPy's ``LinearLeastSquares`` given the proximal operator of
  pywt's ``mode="periodization"`` DWT and our step reproduces our iterates to round-off;
* SigPy's own ``L1WaveletRecon``: a different objective, so the reconstructions are only close;
  ours must be at least as good a minimiser of our objective as SigPy's solution is.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from deepinv_lab.cli import main
from deepinv_lab.errors import UserError
from deepinv_lab.optim.fista import fista, power_iteration
from deepinv_lab.optim.least_squares import least_squares
from deepinv_lab.recons import L1WaveletRecon
from deepinv_lab.systems.base import Identity, System
from deepinv_lab.systems.coils import birdcage_maps
from deepinv_lab.systems.mri import MultiCoilMRI
from deepinv_lab.systems.noise import GaussianNoise
from deepinv_lab.systems.wavelet import Wavelet2D
from tests import tiny

LAMDA = 0.02
SIZE = 32


pytestmark = pytest.mark.usefixtures("one_thread")


def _phantom(generator: torch.Generator) -> torch.Tensor:
    """A smooth complex object ``(1, 1, SIZE, SIZE)``: a disc with two blobs and a phase ramp."""
    axis = torch.linspace(-1, 1, SIZE, dtype=torch.float64)
    r, c = torch.meshgrid(axis, axis, indexing="ij")
    magnitude = torch.sigmoid(20 * (0.7 - (r**2 + c**2).sqrt()))
    magnitude = magnitude + 0.5 * torch.exp(-((r - 0.3) ** 2 + (c + 0.2) ** 2) / 0.02)
    magnitude = magnitude - 0.3 * torch.exp(-((r + 0.3) ** 2 + (c - 0.1) ** 2) / 0.01)
    phase = 0.5 * r + 0.3 * c + 0.1 * torch.randn((), generator=generator, dtype=torch.float64)
    return (magnitude * torch.exp(1j * phase))[None, None]


@pytest.fixture(scope="module")
def problem() -> dict[str, torch.Tensor]:
    return multicoil_problem()


def multicoil_problem() -> dict[str, torch.Tensor]:
    """4 birdcage coils, 32 x 32, random columns plus 6 centre columns, complex128, noisy; the
    object's magnitude as ``target``."""
    generator = torch.Generator().manual_seed(0)
    maps = birdcage_maps(4, (SIZE, SIZE), dtype=torch.complex128)[None]
    mask = (torch.rand(1, 1, 1, SIZE, generator=generator, dtype=torch.float64) < 0.3).double()
    mask[..., SIZE // 2 - 3 : SIZE // 2 + 3] = 1.0
    system = MultiCoilMRI(maps, mask)
    image = _phantom(generator)
    clean = system(image)
    noise = torch.randn(clean.shape, dtype=torch.complex128, generator=generator)
    y = mask * (clean + 0.01 * noise)
    return {"y": y, "coil_maps": maps, "mask": mask, "target": image.abs()}


def _objective(system, y, x, lamda: float, wavelet: Wavelet2D) -> float:
    """``1/2 ||A x - y||^2 + lamda ||W x||_1`` for one sample."""
    return float(0.5 * (system(x) - y).abs().square().sum() + lamda * wavelet(x).abs().sum())


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def test_identity_system_gives_the_closed_form():
    """``A = I``: the minimiser is ``W^H soft(W y, lamda)``, reached by the first step."""
    generator = torch.Generator().manual_seed(1)
    y = torch.randn(2, 1, 16, 16, dtype=torch.complex128, generator=generator)
    recon = L1WaveletRecon(lamda=0.3, levels=2, max_iter=20, magnitude=False).double()
    with torch.no_grad():
        x = recon(y, Identity())
    wavelet = Wavelet2D("db4", 2)
    coefficients = wavelet(y)
    shrunk = coefficients.abs().sub(0.3).clamp_min(0) * torch.exp(1j * coefficients.angle())
    torch.testing.assert_close(x, wavelet.adjoint(shrunk), atol=1e-6, rtol=0)
    assert recon.last_info is not None
    torch.testing.assert_close(recon.last_info.step, torch.ones(2, dtype=torch.float64))


class _Matrix:
    """A dense ``A`` of shape ``(B, m, n)`` acting on ``(B, n)``."""

    def __init__(self, matrix: torch.Tensor):
        self.matrix = matrix

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (self.matrix @ x[..., None])[..., 0]

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return (self.matrix.mT.conj() @ y[..., None])[..., 0]

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        return self.adjoint(self(x))


def test_fista_without_prior_converges_to_least_squares():
    generator = torch.Generator().manual_seed(2)
    system = _Matrix(torch.randn(3, 40, 20, dtype=torch.float64, generator=generator))
    y = torch.randn(3, 40, dtype=torch.float64, generator=generator)
    reference, _ = least_squares(system, y, tol=1e-12, max_iter=200)

    def objective(x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (system(x) - y).square().sum(1)

    values = []
    for iterations in (5, 50, 2000):
        x, info = fista(system, y, lambda v, step: v, max_iter=iterations)
        values.append(objective(x))
    assert bool((values[1] < values[0]).all()) and bool((values[2] <= values[1] + 1e-12).all())
    assert _relative(x, reference) < 1e-8
    eigenvalues = torch.linalg.eigvalsh(system.matrix.mT @ system.matrix)[:, -1]
    # 30 power steps approach the largest eigenvalue from below.
    assert bool((1 / info.step <= eigenvalues * (1 + 1e-12)).all())
    assert bool((1 / info.step >= 0.95 * eigenvalues).all())


def test_tolerance_stops_each_sample_and_batch_equals_each_alone(problem):
    maps = problem["coil_maps"].expand(2, -1, -1, -1)
    mask = torch.cat([problem["mask"], problem["mask"].roll(3, -1)])
    system = MultiCoilMRI(maps, mask)
    y = torch.cat([problem["y"], 3 * problem["y"].roll(3, -1)]) * mask
    recon = L1WaveletRecon(lamda=LAMDA, max_iter=500, tol=1e-6, magnitude=False).double()
    with torch.no_grad():
        together = recon(y, system)
        info = recon.last_info
        assert bool(info.converged.all()) and bool((info.relative_residual <= 1e-6).all())
        for b in range(2):
            alone = recon(y[b : b + 1], MultiCoilMRI(maps[b : b + 1], mask[b : b + 1]))
            assert _relative(together[b : b + 1], alone) < 1e-12
            assert int(info.iterations[b]) == int(recon.last_info.iterations[0])
    assert int(info.iterations[0]) != int(info.iterations[1])
    assert set(recon.diagnostics()) == {
        "fista/iterations",
        "fista/relative_residual",
        "fista/lamda",
        "fista/objective",
    }
    # The objective of each sample's result, and its batch mean in the diagnostics.
    expected = []
    for b in range(2):
        single = MultiCoilMRI(maps[b : b + 1], mask[b : b + 1])
        expected.append(_objective(single, y[b : b + 1], together[b : b + 1], LAMDA, recon.wavelet))
    torch.testing.assert_close(info.objective, torch.tensor(expected, dtype=torch.float64))
    assert info.summary("fista/")["fista/objective"] == pytest.approx(sum(expected) / 2, rel=1e-12)
    assert recon.diagnostics()["fista/lamda"] == LAMDA


def test_power_iteration_finds_the_largest_eigenvalue(problem):
    system = MultiCoilMRI(problem["coil_maps"], problem["mask"])
    # S^H S = I and a 0/1 mask with sampled columns: ||A^H A|| = 1.
    x = system.adjoint(problem["y"])
    estimate = float(power_iteration(system.normal, x)[0])
    assert 0.99 < estimate <= 1 + 1e-12
    assert abs(float(power_iteration(system.normal, x, iterations=300)[0]) - 1) < 1e-3


def test_magnitude_output_and_linear_system_required(problem):
    system = MultiCoilMRI(problem["coil_maps"], problem["mask"])
    recon = L1WaveletRecon(lamda=LAMDA, max_iter=5).double()
    with torch.no_grad():
        magnitude = recon(problem["y"], system)
    assert magnitude.shape == (1, 1, SIZE, SIZE) and magnitude.dtype == torch.float64
    recon.check_system(system, problem["y"])
    with pytest.raises(UserError, match="linear System"):
        recon.check_system(System(), problem["y"])
    with pytest.raises(UserError, match="lamda must be a finite number >= 0, got -1.0"):
        L1WaveletRecon(lamda=-1.0)
    with pytest.raises(UserError, match="lamda must be a finite number >= 0, got inf"):
        L1WaveletRecon(lamda=float("inf"), learn_lamda=True)


def test_system_without_adjoint_is_refused_in_one_line(problem):
    """Gaussian noise (a denoising System) has no adjoint: a UserError naming both."""
    with pytest.raises(UserError, match="L1WaveletRecon needs a linear System.*GaussianNoise"):
        L1WaveletRecon().check_system(GaussianNoise(0.1), problem["target"])


@pytest.mark.parametrize("levels, shape, fits", [(4, (40, 32), 3), (10, (32, 32), 5)])
def test_too_many_levels_for_the_image_name_wavelet_levels_and_shape(levels, shape, fits):
    """H and W must be multiples of ``2 ** levels``: a UserError naming the wavelet, the levels,
    the image shape and the levels that would fit, when the run starts (``check_system``) and in
    the solve. (Levels beyond pywt's ``dwt_max_level``, 2 for db4 at 40 x 32, are allowed: the
    periodic transform stays orthogonal, test_wavelet.py.)"""
    y = torch.zeros(1, 1, *shape, dtype=torch.complex128)
    recon = L1WaveletRecon(levels=levels)
    message = rf"Wavelet2D\('db4', levels={levels}\).*got shape \(1, 1, {shape[0]}, {shape[1]}\)"
    with pytest.raises(UserError, match=message + f"; at most levels={fits} fits"):
        recon.check_system(Identity(), y)
    with pytest.raises(UserError, match=message):
        recon(y, Identity())
    L1WaveletRecon(levels=fits).check_system(Identity(), y)


@pytest.mark.parametrize("step", [0.0, -1.0, float("nan"), [1.0, -0.5]])
def test_non_positive_step_names_the_argument(problem, step):
    system = MultiCoilMRI(problem["coil_maps"], problem["mask"])
    y = problem["y"].expand(2, -1, -1, -1)
    with pytest.raises(UserError, match=r"fista: step must be a finite number > 0, got"):
        fista(system, y, lambda v, s: v, step=torch.tensor(step, dtype=torch.float64))


def test_learned_lamda_is_a_positive_parameter():
    recon = L1WaveletRecon(lamda=0.05, learn_lamda=True)
    assert [name for name, p in recon.named_parameters() if p.requires_grad] == ["log_lamda"]
    assert abs(float(recon.lamda.detach()) - 0.05) < 1e-8
    fixed = L1WaveletRecon(lamda=0.0)
    assert fixed.lamda == 0.0 and list(fixed.parameters()) == []
    with pytest.raises(UserError, match="lamda must be > 0 with learn_lamda=True"):
        L1WaveletRecon(lamda=0.0, learn_lamda=True)


def test_learned_lamda_gradient_equals_finite_differences(problem):
    """The autograd gradient through 20 FISTA iterations: d loss / d log lamda against central
    differences of the loss of fixed-lamda Recons."""
    system = MultiCoilMRI(problem["coil_maps"], problem["mask"])
    y, target = problem["y"], problem["target"]
    recon = L1WaveletRecon(lamda=0.05, learn_lamda=True, max_iter=20).double()
    loss = (recon(y, system) - target).square().sum()
    loss.backward()
    h = 1e-5
    losses = []
    for sign in (1, -1):
        shifted = L1WaveletRecon(lamda=0.05 * float(np.exp(sign * h)), max_iter=20).double()
        with torch.no_grad():
            losses.append(float((shifted(y, system) - target).square().sum()))
    reference = (losses[0] - losses[1]) / (2 * h)
    assert abs(float(recon.log_lamda.grad) - reference) < 1e-4 * abs(reference)


def test_adam_moves_a_poor_lamda_toward_a_better_one(problem):
    """From an over-regularising lamda = 0.5, Adam on the MSE to the object lowers lamda and
    the loss."""
    system = MultiCoilMRI(problem["coil_maps"], problem["mask"])
    y, target = problem["y"], problem["target"]
    recon = L1WaveletRecon(lamda=0.5, learn_lamda=True, max_iter=30).double()
    optimizer = torch.optim.Adam(recon.parameters(), lr=0.2)
    losses = []
    for _ in range(8):
        optimizer.zero_grad()
        loss = (recon(y, system) - target).square().mean()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    lamda = float(recon.lamda.detach())
    assert lamda < 0.5 * 0.5 and losses[-1] < 0.5 * losses[0], (lamda, losses)
    assert recon.diagnostics()["fista/lamda"] == pytest.approx(lamda)


def test_fit_calibrates_lamda_from_the_command_line(tmp_path, capsys):
    """``deepinv-lab fit`` with the CG-SENSE config, its Recon replaced by a learned-lamda
    L1WaveletRecon: two Adam steps move lamda, and the diagnostics are logged."""
    recon = {
        "class_path": "deepinv_lab.recons.L1WaveletRecon",
        "init_args": {"lamda": 0.01, "learn_lamda": True, "max_iter": 5, "tol": 0.0},
    }
    args = [
        "fit",
        "--config",
        str(Path(__file__).parents[1] / "configs" / "cgsense.json"),
        *tiny.overrides("trainer", tiny.TRAINER),
        f"--trainer.logger.init_args.save_dir={tmp_path}",
        "--data.init_args.downsample=4",
        "--data.init_args.num_coils=2",
        f"--model.init_args.recon={json.dumps(recon)}",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "val/ssim=" in out and "val/fista/objective=" in out
    lamda = float(out.split("val/fista/lamda=")[1].split()[0].rstrip(","))
    assert lamda > 0 and abs(lamda - 0.01) > 1e-4


# --- SigPy -----------------------------------------------------------------------------------


def _sigpy_periodic_prox(sp, pywt, lamda: float, levels: int):
    """SigPy's ``UnitaryTransform(L1Reg, W)`` with pywt's orthogonal ``"periodization"`` DWT."""

    class PeriodicL1Wavelet(sp.prox.Prox):
        def __init__(self, shape):
            super().__init__(shape)

        def _prox(self, alpha, input):
            coefficients = pywt.wavedec2(input, "db4", mode="periodization", level=levels)
            array, slices = pywt.coeffs_to_array(coefficients)
            array = sp.thresh.soft_thresh(lamda * alpha, array)
            coefficients = pywt.array_to_coeffs(array, slices, output_format="wavedec2")
            return pywt.waverec2(coefficients, "db4", mode="periodization")

    return PeriodicL1Wavelet


@pytest.mark.filterwarnings("ignore:Level value of 3 is too high")
def test_same_iterates_as_sigpy_solver_with_our_wavelet(problem):
    """Same objective, solver and step: measured relative difference after 100 iterations
    ~1e-15."""
    sp = pytest.importorskip("sigpy")
    pywt = pytest.importorskip("pywt")
    import sigpy.mri.linop

    y, maps, mask = problem["y"], problem["coil_maps"], problem["mask"]
    system = MultiCoilMRI(maps, mask)
    recon = L1WaveletRecon(lamda=LAMDA, magnitude=False).double()
    step = 1 / power_iteration(system.normal, system.adjoint(y))
    with torch.no_grad():
        ours, _ = fista(system, y, recon.proximal, step=step, max_iter=100)

    weights = mask[0].numpy()
    app = sp.app.LinearLeastSquares(
        sigpy.mri.linop.Sense(maps[0].numpy(), weights=weights),
        y[0].numpy() * weights**0.5,
        proxg=_sigpy_periodic_prox(sp, pywt, LAMDA, levels=3)((SIZE, SIZE)),
        alpha=float(step[0]),
        max_iter=100,
        show_pbar=False,
    )
    reference = torch.from_numpy(app.run())[None, None]
    assert _relative(ours, reference) < 1e-10


def test_close_to_sigpy_l1_wavelet_recon(problem):
    """SigPy's wavelet (zero padding, 2 levels here, 45 x 45 coefficients) makes a different
    objective, so each solution must be the better minimiser of its own objective, and the two
    differ by ~3e-2 (relative, measured: 2.96e-2 at lamda = 0.005; 4.9e-2 at 0.02)."""
    sp = pytest.importorskip("sigpy")
    import sigpy.mri.app
    import sigpy.mri.linop

    lamda = 0.005
    y, maps, mask = problem["y"], problem["coil_maps"], problem["mask"]
    system = MultiCoilMRI(maps, mask)
    recon = L1WaveletRecon(lamda=lamda, max_iter=300, magnitude=False).double()
    with torch.no_grad():
        ours = recon(y, system)
    y_np, maps_np, weights = y[0].numpy(), maps[0].numpy(), mask[0].numpy()
    app = sigpy.mri.app.L1WaveletRecon(
        y_np, maps_np, lamda, weights=weights, wave_name="db4", max_iter=300, show_pbar=False
    )
    reference = torch.from_numpy(np.asarray(app.run()))[None, None]

    assert _objective(system, y, ours, lamda, recon.wavelet) <= _objective(
        system, y, reference, lamda, recon.wavelet
    )
    sense = sigpy.mri.linop.Sense(maps_np, weights=weights)
    sigpy_wavelet = sp.linop.Wavelet(sense.ishape, wave_name="db4")

    def sigpy_objective(x: np.ndarray) -> float:
        residual = sense(x) - y_np * weights**0.5
        return 0.5 * float(np.sum(np.abs(residual) ** 2)) + lamda * float(
            np.sum(np.abs(sigpy_wavelet(x)))
        )

    assert sigpy_objective(reference[0, 0].numpy()) <= sigpy_objective(ours[0, 0].numpy())
    assert _relative(ours, reference) < 5e-2
