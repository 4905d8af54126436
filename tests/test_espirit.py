"""ESPIRiT coil maps (SigPy's EspiritCalib) on k-space simulated from birdcage maps: the estimated
maps span the true ones inside the object, in the layout, dtype and k-space convention of the
MRI Systems."""

import pytest
import torch

pytest.importorskip("sigpy")

from deepinv_lab.functional import fft2c  # noqa: E402
from deepinv_lab.systems.coils import birdcage_maps, espirit_maps  # noqa: E402
from deepinv_lab.systems.mri import MultiCoilMRI  # noqa: E402
from deepinv_lab.systems.sampling import poisson_disc_mask  # noqa: E402

SHAPE = (64, 56)


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """ESPIRiT's small SVD and per-pixel products slow down tenfold with threaded BLAS on a busy
    CPU (other test workers); one thread keeps these tests at a fraction of a second each."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(1, user_api="blas"):
        yield


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


def _simulate(coils=8, rotation=0.0, dtype=torch.complex64):
    maps = birdcage_maps(coils, SHAPE, rotation=rotation, dtype=dtype)
    image, support = _object(SHAPE, dtype)
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
