"""ESPIRiT coil maps on k-space simulated from birdcage maps: the estimated maps span the true
ones inside the object, in the layout, dtype and k-space convention of the MRI Systems, and agree
with SigPy's ``sigpy.mri.app.EspiritCalib`` pixel by pixel (sizes, coil counts, batches, dtypes,
undersampled k-space, iteration counts)."""

import numpy as np
import pytest
import torch

from deepinv_lab.functional import fft2c
from deepinv_lab.systems.coils import birdcage_maps
from deepinv_lab.systems.espirit import espirit_maps
from deepinv_lab.systems.mri import MultiCoilMRI
from deepinv_lab.systems.sampling import poisson_disc_mask

SHAPE = (64, 56)


pytestmark = pytest.mark.usefixtures("one_thread")


def _object(shape, dtype=torch.complex64):
    """A smooth elliptical object (flat inside, soft edge) with a smooth phase, and its support."""
    real = torch.empty((), dtype=dtype).real.dtype
    y = torch.linspace(-1, 1, shape[0], dtype=real)[:, None]
    x = torch.linspace(-1, 1, shape[1], dtype=real)[None, :]
    r2 = (y / 0.8) ** 2 + (x / 0.7) ** 2
    magnitude = torch.sigmoid((1 - r2) / 0.05)
    image = torch.polar(magnitude, torch.pi / 3 * x + torch.pi / 4 * y**2).to(dtype)
    return image, r2 < 0.7


def _projection_error(estimated: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Per pixel, ``||s - e e^H s|| / ||s||``: 0 where the estimate spans the true map, whatever
    its phase (ESPIRiT's maps are phase-referenced to the first coil)."""
    inner = (estimated.conj() * true).sum(-3, keepdim=True)
    return (true - inner * estimated).norm(dim=-3) / true.norm(dim=-3)


def _simulate(coils=8, rotation=0.0, dtype=torch.complex64, shape=SHAPE):
    maps = birdcage_maps(coils, shape, rotation=rotation, dtype=dtype)
    image, support = _object(shape, dtype)
    return maps, fft2c(maps * image), image, support


def test_maps_span_the_true_maps_inside_the_object():
    maps, kspace, image, support = _simulate()
    estimated = espirit_maps(kspace, calib_width=24)
    assert estimated.shape == maps.shape and estimated.dtype == torch.complex64
    error = _projection_error(estimated, maps)
    assert error[support].max() < 0.02
    # unit norm over coils inside the object (as the RSS-normalised birdcage maps), zero outside
    assert (estimated.norm(dim=0)[support] - 1).abs().max() < 1e-3
    corners = torch.zeros(SHAPE, dtype=torch.bool)
    corners[:4, :4] = corners[-4:, -4:] = True
    assert estimated[:, corners].abs().max() == 0
    # after removing the common (per-pixel) phase the maps agree with the true ones
    phase = torch.sgn((estimated.conj() * maps).sum(0))
    assert ((maps - phase * estimated).norm(dim=0)[support]).max() < 0.02
    # consistent with the Systems: the SENSE combination recovers |image| inside the object
    system = MultiCoilMRI(estimated[None], torch.ones(1, 1, 1, SHAPE[1]))
    combined = system.adjoint(kspace[None])[0, 0]
    assert ((combined.abs() - image.abs())[support]).abs().max() < 0.02


def test_undersampled_kspace_with_a_calibration_block():
    """Only the calibration block is used: a Poisson disc mask that keeps it gives the same maps."""
    pytest.importorskip("sigpy")  # the Poisson-disc sampler
    maps, kspace, _, support = _simulate(rotation=0.4)
    mask = poisson_disc_mask(SHAPE, 4, calib=(24, 24), seed=0)
    full = espirit_maps(kspace)
    undersampled = espirit_maps(kspace * mask)
    torch.testing.assert_close(undersampled, full)
    assert _projection_error(undersampled, maps)[support].max() < 0.02


def test_batched_input_dtype_and_device():
    maps0, kspace0, _, _ = _simulate(coils=6, dtype=torch.complex128)
    maps1, kspace1, _, support = _simulate(coils=6, rotation=1.0, dtype=torch.complex128)
    batch = torch.stack([kspace0, kspace1])
    estimated = espirit_maps(batch, calib_width=20)
    assert estimated.shape == (2, 6, *SHAPE) and estimated.dtype == torch.complex128
    torch.testing.assert_close(estimated[1], espirit_maps(kspace1, calib_width=20))
    assert _projection_error(estimated[1], maps1)[support].max() < 0.02
    assert estimated.device == batch.device


def test_no_signal_gives_zero_maps_and_bad_input_is_rejected():
    zeros = espirit_maps(torch.zeros(4, 32, 32, dtype=torch.complex64))
    assert torch.equal(zeros, torch.zeros_like(zeros))
    with pytest.raises(ValueError, match=r"complex k-space.*float32 with shape \(4, 32, 32\)"):
        espirit_maps(torch.zeros(4, 32, 32))
    with pytest.raises(
        ValueError, match=r"calib_width <= min\(H, W\).*calib_width=24.*\(4, 20, 32\)"
    ):
        espirit_maps(torch.zeros(4, 20, 32, dtype=torch.complex64))
    with pytest.raises(ValueError, match=r"shape \(32, 32\)"):
        espirit_maps(torch.zeros(32, 32, dtype=torch.complex64))
    with pytest.raises(ValueError, match=r"shape \(1, 2, 4, 32, 32\)"):
        espirit_maps(torch.zeros(1, 2, 4, 32, 32, dtype=torch.complex64))
    with pytest.raises(
        ValueError,
        match=r"kernel_width < calib_width.*kernel_width=8, calib_width=8.*\(4, 32, 32\)",
    ):
        espirit_maps(torch.zeros(4, 32, 32, dtype=torch.complex64), calib_width=8, kernel_width=8)
    with pytest.raises(ValueError, match=r"calib_width=\(24, 40\).*\(4, 32, 32\)"):
        espirit_maps(torch.zeros(4, 32, 32, dtype=torch.complex64), calib_width=(24, 40))
    with pytest.raises(ValueError, match="max_iter must be >= 1, got 0"):
        espirit_maps(torch.zeros(4, 32, 32, dtype=torch.complex64), max_iter=0)


def _sigpy_espirit(
    kspace: torch.Tensor,
    calib_width: int = 24,
    threshold: float = 0.02,
    crop: float = 0.95,
    kernel_width: int = 6,
    max_iter: int = 100,
) -> tuple[torch.Tensor, torch.Tensor]:
    """SigPy's ``EspiritCalib`` on one sample ``(coils, H, W)``: the maps (0 where SigPy's phase
    reference divides by zero) and the ``(H, W)`` eigenvalues that decide the crop."""
    mri_app = pytest.importorskip("sigpy.mri.app")
    with np.errstate(divide="ignore", invalid="ignore"):
        maps, eigenvalues = mri_app.EspiritCalib(
            kspace.resolve_conj().numpy(),
            calib_width=calib_width,
            thresh=threshold,
            kernel_width=kernel_width,
            crop=crop,
            max_iter=max_iter,
            output_eigenvalue=True,
            show_pbar=False,
        ).run()
    return torch.from_numpy(np.nan_to_num(maps)), torch.from_numpy(eigenvalues).reshape(
        maps.shape[1:]
    )


def _assert_matches_sigpy(ours, kspace, support, **options):
    """Per pixel of the object, ``|<m, m_sigpy>| / (|m| |m_sigpy|) >= 0.99`` (blind to a common
    phase); beyond that, the same maps (same phase reference) wherever both keep the pixel, and
    the same crop except at eigenvalues within 1e-4 of the threshold."""
    reference, eigenvalues = _sigpy_espirit(kspace, **options)
    assert ours.shape == reference.shape
    kept, kept_reference = ours.norm(dim=0) > 0, reference.norm(dim=0) > 0
    assert kept[support].all() and kept_reference[support].all()
    disputed = kept != kept_reference
    assert ((eigenvalues[disputed] - options.get("crop", 0.95)).abs() < 1e-4).all()
    inner = (ours.conj() * reference.to(ours.dtype)).sum(0).abs()
    agreement = inner / (ours.norm(dim=0) * reference.norm(dim=0))
    assert agreement[support].min() >= 0.99
    both = kept & kept_reference
    assert (ours - reference.to(ours.dtype))[:, both].abs().max() < 1e-3


@pytest.mark.parametrize(
    ("coils", "shape", "dtype", "options"),
    [
        (8, SHAPE, torch.complex64, {}),
        (15, SHAPE, torch.complex64, {}),
        (8, (40, 72), torch.complex64, {"calib_width": 20}),  # wider than tall
        (8, (63, 57), torch.complex64, {"calib_width": 19, "kernel_width": 5}),  # odd sizes
        (8, SHAPE, torch.complex128, {"threshold": 0.01}),
        (8, SHAPE, torch.complex64, {"crop": 0.0}),  # maps everywhere
        # unconverged iterates: the iteration count means SigPy's, for every bit pattern of n - 1
        (8, SHAPE, torch.complex64, {"crop": 0.0, "max_iter": 1}),
        (8, SHAPE, torch.complex64, {"crop": 0.0, "max_iter": 2}),
        (8, SHAPE, torch.complex64, {"crop": 0.0, "max_iter": 7}),
    ],
    ids=["8coils", "15coils", "wide", "odd", "complex128", "nocrop", "iter1", "iter2", "iter7"],
)
def test_matches_sigpy(coils, shape, dtype, options):
    _, kspace, _, support = _simulate(coils, rotation=0.3, dtype=dtype, shape=shape)
    ours = espirit_maps(kspace, **options)
    assert ours.dtype == dtype
    _assert_matches_sigpy(ours, kspace, support, **options)


def _singular_values(kspace: torch.Tensor, calib_width: int, kernel_width: int) -> np.ndarray:
    """Singular values of the calibration matrix, built with numpy's sliding windows."""
    height, width = kspace.shape[-2:]
    top, left = height // 2 - calib_width // 2, width // 2 - calib_width // 2
    calib = kspace[:, top : top + calib_width, left : left + calib_width].numpy()
    windows = np.lib.stride_tricks.sliding_window_view(calib, (kernel_width, kernel_width), (1, 2))
    matrix = windows.transpose(1, 2, 0, 3, 4).reshape(-1, len(calib) * kernel_width**2)
    return np.linalg.svd(matrix, compute_uv=False)


def test_batch_of_samples_with_different_numbers_of_kernels_matches_sigpy():
    """Each sample of a batch keeps its own kernels (noise raises the count of singular values
    above the threshold) and gets SigPy's maps for that sample alone."""
    _, clean, _, support = _simulate(rotation=0.2)
    _, other, _, _ = _simulate(rotation=1.3)
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(other.shape, dtype=other.dtype, generator=generator)
    noisy = other + 1e-2 * other.abs().max() * noise
    counts = [
        int((values > 0.02 * values[0]).sum())
        for values in (_singular_values(k, 24, 6) for k in (clean, noisy))
    ]
    assert counts[0] < counts[1]
    estimated = espirit_maps(torch.stack([clean, noisy]))
    assert estimated.shape == (2, 8, *SHAPE)
    _assert_matches_sigpy(estimated[0], clean, support)
    _assert_matches_sigpy(estimated[1], noisy, support)


def test_column_undersampled_kspace_with_acs_matches_sigpy():
    _, kspace, _, support = _simulate(rotation=0.7)
    columns = torch.zeros(SHAPE[1], dtype=torch.bool)
    columns[::3] = True
    columns[SHAPE[1] // 2 - 12 : SHAPE[1] // 2 + 12] = True  # the ACS block
    undersampled = kspace * columns
    ours = espirit_maps(undersampled)
    _assert_matches_sigpy(ours, undersampled, support)
    torch.testing.assert_close(ours, espirit_maps(kspace))


def test_rectangular_calibration_block_of_the_acs_columns():
    """A column mask acquires every row but only a narrow block of central columns: a
    ``(rows, columns)`` block inside it gives maps that span the true ones, ignores every column
    outside it, and transposes with the k-space (SigPy takes only square blocks)."""
    maps, kspace, _, support = _simulate(rotation=0.5)
    acs = torch.zeros(SHAPE[1], dtype=torch.bool)
    acs[SHAPE[1] // 2 - 7 : SHAPE[1] // 2 + 7] = True
    columns = acs.clone()
    columns[::3] = True
    estimated = espirit_maps(kspace * columns, calib_width=(24, 14))
    assert _projection_error(estimated, maps)[support].max() < 0.02
    torch.testing.assert_close(estimated, espirit_maps(kspace * acs, calib_width=(24, 14)))
    transposed = espirit_maps((kspace * columns).mT, calib_width=(14, 24))
    torch.testing.assert_close(transposed.mT, estimated, atol=1e-5, rtol=0)
    assert torch.equal(espirit_maps(kspace, calib_width=(24, 24)), espirit_maps(kspace))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    _, kspace0, _, support = _simulate(rotation=0.2)
    _, kspace1, _, _ = _simulate(rotation=0.9)
    batch = torch.stack([kspace0, kspace1])
    on_cuda = espirit_maps(batch.cuda())
    assert on_cuda.device.type == "cuda" and on_cuda.dtype == torch.complex64
    on_cpu = espirit_maps(batch)
    inner = (on_cuda.cpu().conj() * on_cpu).sum(1).abs()
    assert inner[:, support].min() > 0.9999
    assert (on_cuda.cpu() - on_cpu)[:, :, support].abs().max() < 1e-3


def test_gradients_are_not_tracked():
    _, kspace, _, _ = _simulate()
    maps = espirit_maps(kspace.clone().requires_grad_())
    assert not maps.requires_grad
