"""GRAPPA (deepinv_lab.systems.grappa, deepinv_lab.recons.GrappaRecon): recovery of k-space that
the coil model explains, invariants (acquired samples, full sampling, batching, dtypes), a loop
reference of the calibration, and pygrappa (its ``grappa``) as an independent implementation."""

import numpy as np
import pytest
import torch

from deepinv_lab.errors import UserError
from deepinv_lab.functional import fft2c, ifft2c, rss
from deepinv_lab.recons import GrappaRecon, ZeroFilled
from deepinv_lab.systems.coils import birdcage_maps
from deepinv_lab.systems.downsampling import Downsampling
from deepinv_lab.systems.grappa import acs_columns, grappa, grappa_weights
from deepinv_lab.systems.mri import MultiCoilFourier, MultiCoilMRI, SingleCoilMRI
from deepinv_lab.systems.sampling import RandomMaskFunc, to_column_mask

COILS, HEIGHT, WIDTH = 8, 64, 48


def _coil_kspace(dtype=torch.complex128, noise=0.0, seed=0):
    """``fft2c(S x)``: smooth birdcage coils times an object with sharp edges (two ellipses), so
    that much of the energy lies outside the ACS block; ``(coils, H, W)``."""
    maps = birdcage_maps(COILS, (HEIGHT, WIDTH), dtype=dtype)
    real = maps.real.dtype
    rows = (torch.arange(HEIGHT, dtype=real) - HEIGHT / 2) / (HEIGHT / 2)
    cols = (torch.arange(WIDTH, dtype=real) - WIDTH / 2) / (WIDTH / 2)
    yy, xx = torch.meshgrid(rows, cols, indexing="ij")
    image = ((xx / 0.7) ** 2 + (yy / 0.8) ** 2 < 1).to(real)
    image = image * (1 + 0.5 * ((xx - 0.2) ** 2 + (yy + 0.1) ** 2 < 0.1).to(real))
    kspace = fft2c(maps * image)
    generator = torch.Generator().manual_seed(seed)
    return kspace + noise * torch.randn(kspace.shape, dtype=dtype, generator=generator)


def _equispaced_mask(acceleration=2, acs=24, dtype=torch.float64):
    """Every ``acceleration``-th column plus ``acs`` central ones (fastMRI's placement), ``(1, 1,
    W)``."""
    mask = torch.zeros(WIDTH, dtype=dtype)
    mask[::acceleration] = 1
    start = (WIDTH - acs + 1) // 2
    mask[start : start + acs] = 1
    return mask.reshape(1, 1, WIDTH)


def _random_mask(center_fraction, acceleration, seed):
    mask, num_low = RandomMaskFunc([center_fraction], [acceleration])(
        (1, HEIGHT, WIDTH, 2), seed=seed
    )
    return to_column_mask(mask).double(), num_low


def _nmse(estimate, reference):
    return float((estimate - reference).norm() ** 2 / reference.norm() ** 2)


def _relative(a, b):
    return float((a - b).norm() / b.norm())


def test_grappa_recovers_kspace_of_smooth_coil_images():
    """R = 2 with 24 ACS columns: NMSE 7.2e-5 measured (zero-filled 5.0e-3)."""
    full = _coil_kspace()
    mask = _equispaced_mask()
    measured = full * mask
    filled = grappa(measured, mask, 24)
    assert _nmse(filled, full) < 2e-4
    assert _nmse(filled, full) < _nmse(measured, full) / 30
    # the same in the image domain (fastMRI's RSS images)
    image = rss(ifft2c(full), dim=0)
    assert (
        _nmse(rss(ifft2c(filled), dim=0), image) < _nmse(rss(ifft2c(measured), dim=0), image) / 30
    )


def test_acquired_samples_are_kept_and_full_sampling_returns_the_input():
    full = _coil_kspace(noise=1e-3)
    mask, num_low = _random_mask(0.25, 3, seed=3)
    acquired = mask[0, 0].bool()
    garbage = full.clone()  # values at unacquired points must not matter
    filled = grappa(garbage, mask, num_low)
    assert torch.equal(filled[..., acquired], full[..., acquired])
    torch.testing.assert_close(filled, grappa(full * mask, mask, num_low), rtol=0, atol=0)
    everything = torch.ones(1, 1, WIDTH, dtype=torch.float64)
    assert torch.equal(grappa(full, everything), full)


def test_a_batch_with_different_masks_equals_each_sample_alone():
    kspace = torch.stack([_coil_kspace(noise=1e-3, seed=s) for s in (0, 1)])
    (mask_a, low_a), (mask_b, low_b) = _random_mask(0.25, 3, 1), _random_mask(0.3, 4, 2)
    masks = torch.stack([mask_a, mask_b])
    assert not torch.equal(mask_a, mask_b) and low_a != low_b
    together = grappa(kspace * masks, masks, torch.tensor([low_a, low_b]))
    for b, (mask, low) in enumerate([(mask_a, low_a), (mask_b, low_b)]):
        alone = grappa(kspace[b] * mask, mask, low)  # unbatched (coils, H, W)
        torch.testing.assert_close(together[b], alone, rtol=1e-10, atol=1e-12)


def test_complex64_and_complex128():
    full = _coil_kspace(noise=1e-3)
    mask, num_low = _random_mask(0.25, 3, seed=4)
    double = grappa(full * mask, mask, num_low)
    single = grappa((full * mask).to(torch.complex64), mask.float(), num_low)
    assert double.dtype == torch.complex128 and single.dtype == torch.complex64
    assert _relative(single.to(torch.complex128), double) < 1e-4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_the_cpu():
    kspace = torch.stack([_coil_kspace(noise=1e-3, seed=s) for s in (0, 1)])
    masks = torch.stack([_random_mask(0.25, 3, 1)[0], _random_mask(0.25, 4, 2)[0]])
    for dtype in (torch.complex64, torch.complex128):
        measured, mask = (kspace * masks).to(dtype), masks.to(kspace.real.dtype)
        cpu = grappa(measured, mask, 12)
        cuda = grappa(measured.cuda(), mask.cuda(), torch.tensor([12, 12], device="cuda"))
        assert cuda.device.type == "cuda" and cuda.dtype == dtype
        assert _relative(cuda.cpu(), cpu) < (1e-4 if dtype == torch.complex64 else 1e-10)


def _reference_weights(acs: np.ndarray, pattern: np.ndarray, lamda: float) -> np.ndarray:
    """The calibration written out: one equation per window inside ``acs`` ``(coils, Ha, Wa)``,
    sources at ``pattern`` ``(kx, ky)`` (coils fastest), target the window's centre;
    ``(S^H S + lambda I)^{-1} S^H T`` with ``lambda = lamda ||S^H S||_F / n``."""
    kx, ky = pattern.shape
    sources, targets = [], []
    for h in range(acs.shape[1] - kx + 1):
        for w in range(acs.shape[2] - ky + 1):
            window = acs[:, h : h + kx, w : w + ky].transpose(1, 2, 0)  # (kx, ky, coils)
            sources.append(window[pattern].ravel())
            targets.append(window[kx // 2, ky // 2])
    s, t = np.array(sources), np.array(targets)
    normal = s.conj().T @ s
    damping = lamda * np.linalg.norm(normal) / normal.shape[0]
    return np.linalg.solve(normal + damping * np.eye(normal.shape[0]), s.conj().T @ t)


def test_weights_match_a_loop_reference_and_fill_kspace():
    """The weights solve the regularised least squares written out window by window, and
    ``grappa`` fills an interior point with the window's samples times those weights."""
    full = _coil_kspace(noise=1e-3)
    mask = _equispaced_mask(acceleration=3, acs=16)
    start = (WIDTH - 16 + 1) // 2
    acs = full[..., start : start + 16]
    pattern = np.zeros((5, 5), dtype=bool)
    pattern[:, [0, 3]] = True  # acquired columns at -2 and +1 around a missing column
    pattern[4, 3] = False  # and a row of the kernel off the grid
    ours = grappa_weights(acs, torch.from_numpy(pattern), regularization=0.05)
    assert ours.shape == (25 * COILS, COILS)
    rows = ours.reshape(25, COILS, COILS)
    assert not rows[torch.from_numpy(~pattern).flatten()].any()
    expected = _reference_weights(acs.numpy(), pattern, 0.05)
    np.testing.assert_allclose(rows[pattern.flatten()].reshape(-1, COILS), expected, rtol=1e-9)

    filled = grappa(full * mask, mask, 16, regularization=0.05)
    row, column = 30, 10  # an interior point of a missing column (acquired: 9 and 12)
    neighbours = (mask[0, 0, column - 2 : column + 3] > 0).expand(5, 5).clone()
    weights = grappa_weights(acs, neighbours, regularization=0.05)
    window = (full * mask)[:, row - 2 : row + 3, column - 2 : column + 3].permute(1, 2, 0)
    torch.testing.assert_close(filled[:, row, column], window.flatten() @ weights)


def test_points_without_acquired_neighbours_stay_zero():
    full = _coil_kspace()
    mask = _equispaced_mask(acceleration=WIDTH, acs=24)  # column 0 and the ACS block
    filled = grappa(full, mask, 24, kernel_size=(3, 5))
    lonely = [c for c in range(WIDTH) if mask[0, 0, max(c - 2, 0) : c + 3].sum() == 0]
    assert len(lonely) == 17 and not filled[..., lonely].any()
    assert filled[..., 1].all() and filled[..., 2].all()  # column 0 is their neighbour


def test_grappa_matches_pygrappa():
    """pygrappa's ``grappa(kspace, calib)`` pads ``calib`` with zeros and calibrates on every
    window of the padded block; given that padded block as ``acs``, ours solves the same
    equations with the same Tikhonov convention (measured: 2e-15 relative, complex128).

    Kept small: pygrappa's ``grappa`` misplaces the points of a pattern with more than about
    8200 of them under NumPy 2.4.6 (``np.unravel_index`` of an ``(N, 1)`` array), see
    benchmarks/bench_grappa.py."""
    pygrappa = pytest.importorskip("pygrappa")
    full = _coil_kspace(noise=1e-3)
    for (mask, num_low), kernel, lamda in [
        ((_equispaced_mask(), 24), (5, 5), 0.01),
        (_random_mask(0.25, 3, seed=5), (5, 5), 0.01),
        (_random_mask(0.25, 4, seed=6), (3, 7), 1e-3),
    ]:
        measured = full * mask
        start = (WIDTH - num_low + 1) // 2
        calib = measured[..., start : start + num_low]
        expected = pygrappa.grappa(
            measured.permute(1, 2, 0).numpy(),
            calib.permute(1, 2, 0).numpy(),
            kernel_size=kernel,
            lamda=lamda,
        )
        expected = torch.from_numpy(expected).permute(2, 0, 1)
        pads = (kernel[1] // 2, kernel[1] // 2, kernel[0] // 2, kernel[0] // 2)
        padded = torch.nn.functional.pad(calib, pads)
        ours = grappa(measured, mask, kernel_size=kernel, regularization=lamda, acs=padded)
        assert _relative(ours, expected) < 1e-10


def test_acs_block_from_the_mask():
    columns = torch.zeros(3, 20, dtype=torch.bool)
    columns[:, 7:13] = True  # 6 central columns around W // 2 = 10
    columns[1, 13] = True  # an acquired neighbour joins the derived block
    start, widths = acs_columns(columns, None)
    assert start.tolist() == [7, 7, 7] and widths.tolist() == [6, 7, 6]
    start, widths = acs_columns(columns, torch.tensor([6, 0, 4]))  # 0: derive
    assert start.tolist() == [7, 7, 8] and widths.tolist() == [6, 7, 4]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda k, m: grappa(k.real, m, 24), r"kspace must be a complex64 or complex128.*float64"),
        (lambda k, m: grappa(k[0], m, 24), r"kspace must be .*got shape \(64, 48\)"),
        (lambda k, m: grappa(k, m[..., :40], 24), r"mask of shape \(1, 1, 40\) does not broadcast"),
        (
            lambda k, m: grappa(k, (torch.rand(1, HEIGHT, WIDTH) > 0.5).double(), 24),
            r"mask of shape \(1, 64, 48\) varies across coils or rows.*Poisson disc",
        ),
        (lambda k, m: grappa(k, m, 30), r"num_low_frequencies=30 .*leaves column 9 unacquired"),
        (lambda k, m: grappa(k, m, [24, 24]), r"num_low_frequencies must be an int or 1 values"),
        (
            lambda k, m: grappa(k, m, 4),
            r"ACS block of 64 rows x 4 columns is smaller than the "
            r"kernel 5 x 5",
        ),  # fmt: skip
        (lambda k, m: grappa(k, m * 0, None), r"centre column 24 of sample\(s\) \[0\] is not "),
        (
            lambda k, m: grappa(k, m * (torch.arange(WIDTH) != WIDTH // 2), None),
            r"centre column 24 of sample\(s\) \[0\] is not acquired",
        ),
        (lambda k, m: grappa(k, m, 24, acs=k), r"give num_low_frequencies or acs, not both"),
        (lambda k, m: grappa(k, m, acs=k[:3]), r"acs of shape \(3, 64, 48\) does not fit"),
        (lambda k, m: grappa(k, m, 24, kernel_size=(5,)), r"kernel_size must be two integers"),
        (lambda k, m: grappa(k, m, 24, regularization=-1), r"regularization must be a number >= 0"),
        (
            lambda k, m: grappa_weights(k, torch.ones(5, 5, dtype=torch.bool)),
            r"a pattern holds the kernel centre \(2, 2\)",
        ),
        (lambda k, m: grappa_weights(k, torch.ones(5, 5)), r"patterns must be a boolean"),
    ],
)
def test_bad_input_is_a_user_error(call, message):
    full = _coil_kspace()
    mask = _equispaced_mask()
    with pytest.raises(UserError, match=message):
        call(full * mask, mask)


def _multicoil_batch(mask, num_low):
    maps = birdcage_maps(COILS, (HEIGHT, WIDTH), dtype=torch.complex128)[None].repeat(2, 1, 1, 1)
    image = ifft2c(_coil_kspace()[None]).mul(maps.conj()).sum(1, keepdim=True)  # S^H of coils
    system = MultiCoilMRI(maps, mask, num_low)
    return system, system(image)


def test_grappa_recon_rss_and_adjoint():
    mask = _equispaced_mask()[None].expand(2, 1, 1, WIDTH)
    system, y = _multicoil_batch(mask, 24)
    filled = grappa(y, mask, 24)
    rss_image = GrappaRecon()(y, system)
    assert rss_image.shape == (2, 1, HEIGHT, WIDTH) and not rss_image.is_complex()
    torch.testing.assert_close(rss_image, rss(ifft2c(filled), dim=1, keepdim=True))
    adjoint = GrappaRecon(combine="adjoint")(y, system)
    torch.testing.assert_close(adjoint, system.coil_sensitivity.adjoint(ifft2c(filled)).abs())
    # the same data without coil maps
    torch.testing.assert_close(GrappaRecon()(y, MultiCoilFourier(mask, 24)), rss_image)
    # full sampling: nothing to fill, ZeroFilled's image
    system, y = _multicoil_batch(torch.ones(2, 1, 1, WIDTH, dtype=torch.float64), None)
    torch.testing.assert_close(GrappaRecon()(y, system), ZeroFilled()(y, system))


def test_grappa_recon_refuses_what_it_cannot_reconstruct():
    recon = GrappaRecon()
    mask = _equispaced_mask()[None].expand(2, 1, 1, WIDTH)
    system, y = _multicoil_batch(mask, 24)
    recon.check_system(system, y)
    images = torch.rand(2, 1, 16, 16)
    expected = r"needs Cartesian multicoil k-space .* Downsampling with measurements of shape"
    with pytest.raises(UserError, match=expected + r" \(2, 1, 8, 8\)"):
        recon.check_system(Downsampling(2), Downsampling(2)(images))
    single = SingleCoilMRI(mask.float())
    with pytest.raises(UserError, match=r"several coils.*SingleCoilMRI"):
        recon.check_system(single, single(torch.randn(2, 1, HEIGHT, WIDTH, dtype=torch.complex64)))
    two_d = MultiCoilFourier((torch.rand(2, 1, HEIGHT, WIDTH) > 0.5).double())
    with pytest.raises(UserError, match=r"GrappaRecon cannot use the sampling of .*"
                       r"MultiCoilFourier.*mask of shape \(2, 1, 64, 48\) varies"):  # fmt: skip
        recon.check_system(two_d, y)
    with pytest.raises(UserError, match=r"combine='adjoint'\) needs coil maps.*MultiCoilFourier"):
        GrappaRecon(combine="adjoint").check_system(MultiCoilFourier(mask), y)
    with pytest.raises(UserError, match="combine must be 'rss' or 'adjoint'"):
        GrappaRecon(combine="sense")
    with pytest.raises(UserError, match="GrappaRecon: kernel_size must be two integers"):
        GrappaRecon(kernel_size=(5, 0))
