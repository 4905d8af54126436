"""2D k-space masks: Poisson disc (SigPy) and variable density, their mask functions and
batch_masks: achieved acceleration, calibration block, reproducibility, shapes and errors."""

import numpy as np
import pytest
import torch

from deepinv_lab.systems.mri import MultiCoilMRI, SingleCoilMRI
from deepinv_lab.systems.sampling import (
    PoissonDiscMaskFunc,
    RandomMaskFunc,
    SampledMask,
    VariableDensityMaskFunc,
    batch_masks,
    calibration_slices,
    poisson_disc_mask,
    to_kspace_mask,
    variable_density_mask,
)


def _acceleration(mask: torch.Tensor) -> float:
    return mask.numel() / float(mask.sum())


def _check_mask(mask, shape, calib):
    assert mask.shape == shape and mask.dtype == torch.float32
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert bool((mask[calibration_slices(shape, calib)] == 1).all())
    assert mask[shape[0] // 2, shape[1] // 2] == 1  # DC


def test_calibration_block_is_the_center_crop_around_dc():
    assert calibration_slices((64, 64), (12, 12)) == (slice(26, 38), slice(26, 38))
    assert calibration_slices((63, 64), (16, 11)) == (slice(23, 39), slice(26, 37))


@pytest.mark.parametrize("shape,calib", [((64, 64), (12, 12)), ((63, 81), (10, 16))])
@pytest.mark.parametrize("acceleration", [4, 8])
def test_poisson_disc_acceleration_calibration_reproducibility(shape, calib, acceleration):
    accelerations = []
    for seed in range(4):
        mask = poisson_disc_mask(shape, acceleration, calib=calib, seed=seed)
        _check_mask(mask, shape, calib)
        accelerations.append(_acceleration(mask))
    relative = np.abs(np.array(accelerations) - acceleration) / acceleration
    assert relative.max() < 0.05, accelerations
    again = poisson_disc_mask(shape, acceleration, calib=calib, seed=3)
    assert torch.equal(again, mask)
    assert not torch.equal(poisson_disc_mask(shape, acceleration, calib=calib, seed=0), mask)


def test_poisson_disc_is_sigpys_and_retries_where_sigpy_fails_or_hangs():
    sigpy_mri = pytest.importorskip("sigpy.mri")
    reference = sigpy_mri.poisson((64, 64), 4, calib=(12, 12), dtype=np.float32, seed=1)
    ours = poisson_disc_mask((64, 64), 4, calib=(12, 12), seed=1, max_retries=0)
    assert torch.equal(ours, torch.from_numpy(reference))
    # With this seed SigPy's first disc centre lies inside the calibration block, no point can be
    # added and sigpy.mri.poisson fails for every slope; a derived seed is used instead.
    with pytest.raises(ValueError, match="Cannot generate mask"):
        sigpy_mri.poisson((96, 80), 4, calib=(12, 12), dtype=np.float32, seed=0)
    mask = poisson_disc_mask((96, 80), 4, calib=(12, 12), seed=0)
    _check_mask(mask, (96, 80), (12, 12))
    assert abs(_acceleration(mask) - 4) < 0.1
    assert torch.equal(mask, poisson_disc_mask((96, 80), 4, calib=(12, 12), seed=0))
    with pytest.raises(ValueError, match="could not reach acceleration 4"):
        poisson_disc_mask((96, 80), 4, calib=(12, 12), seed=0, max_retries=0)
    # With this seed the achieved acceleration jumps over the tolerance band and SigPy's own
    # bisection never ends; ours stops after max_bisections steps and retries.
    mask = poisson_disc_mask((64, 64), 8, calib=(12, 12), seed=7)
    _check_mask(mask, (64, 64), (12, 12))
    assert abs(_acceleration(mask) - 8) < 0.1


@pytest.mark.parametrize("shape,calib", [((64, 64), (12, 12)), ((63, 81), (10, 16))])
@pytest.mark.parametrize("acceleration", [2.5, 4, 8])
def test_variable_density_acceleration_calibration_reproducibility(shape, calib, acceleration):
    for seed in range(4):
        mask = variable_density_mask(shape, acceleration, calib=calib, seed=seed)
        _check_mask(mask, shape, calib)
        # the number of samples is exact: the acceleration is off by rounding only
        assert mask.sum() == round(shape[0] * shape[1] / acceleration)
        assert abs(_acceleration(mask) - acceleration) / acceleration < 1e-3
    assert torch.equal(variable_density_mask(shape, acceleration, calib, seed=3), mask)
    assert not torch.equal(variable_density_mask(shape, acceleration, calib, seed=0), mask)


def test_variable_density_follows_its_density():
    """Sampling frequency falls with the radius; power 0 is uniform outside the calibration."""
    shape, calib = (64, 64), (8, 8)
    ky, kx = np.meshgrid(np.arange(64) - 32, np.arange(64) - 32, indexing="ij")
    radius = np.hypot(ky, kx) / 32
    inner, outer = (radius > 0.2) & (radius < 0.4), (radius > 0.6) & (radius < 0.8)
    frequency = sum(variable_density_mask(shape, 4, calib, power=3, seed=s) for s in range(20))
    frequency = frequency.numpy() / 20
    assert frequency[inner].mean() > 2 * frequency[outer].mean()
    uniform = sum(variable_density_mask(shape, 4, calib, power=0, seed=s) for s in range(20))
    uniform = uniform.numpy() / 20
    assert abs(uniform[inner].mean() - uniform[outer].mean()) < 0.05


@pytest.mark.parametrize(
    "mask_func",
    [PoissonDiscMaskFunc([4, 6], calib=(8, 8), seed=0), VariableDensityMaskFunc([4, 6], (8, 8))],
    ids=["poisson", "variable_density"],
)
def test_mask_functions_follow_the_fastmri_call(mask_func):
    sampled = mask_func((4, 48, 40, 2), seed=(1, 2, 3))
    assert isinstance(sampled, SampledMask)
    mask, num_low_frequencies = sampled
    assert mask.shape == (1, 48, 40, 1) and mask.dtype == torch.float32
    # the width of the calibration block, as for column masks
    assert num_low_frequencies == 8 and isinstance(num_low_frequencies, int)
    _check_mask(mask[0, :, :, 0], (48, 40), (8, 8))
    again, _ = mask_func((4, 48, 40, 2), seed=(1, 2, 3))
    assert torch.equal(mask, again)
    # without a seed the function's own generator advances: reproducible as a sequence
    first, second = mask_func((48, 40, 2))[0], mask_func((48, 40, 2))[0]
    assert first.shape == (48, 40, 1) and not torch.equal(first, second)
    accelerations = {round(_acceleration(mask_func((48, 40, 2), seed=s)[0])) for s in range(12)}
    assert accelerations == {4, 6}
    assert to_kspace_mask(mask).shape == (1, 48, 40)
    with pytest.raises(ValueError, match=r"\(\.\.\., H, W, 2\), got \(48, 40\)"):
        mask_func((48, 40))


def test_batch_masks_shapes_and_per_sample_differences():
    func = VariableDensityMaskFunc([4], calib=(8, 8), seed=0)
    masks = batch_masks(func, 3, (32, 24), seeds=7)
    assert masks.shape == (3, 1, 32, 24) and masks.dtype == torch.float32
    assert not torch.equal(masks[0], masks[1]) and not torch.equal(masks[1], masks[2])
    assert torch.equal(masks, batch_masks(func, 3, (32, 24), seeds=7))
    explicit = batch_masks(func, 2, (32, 24), seeds=[(7, 0), (7, 1)])
    assert torch.equal(explicit, masks[:2])
    columns = batch_masks(RandomMaskFunc([0.08], [4], seed=0), 4, (32, 24), seeds=[0, 1, 2, 3])
    assert columns.shape == (4, 1, 1, 24)
    assert len({tuple(m.flatten().tolist()) for m in columns}) == 4
    # the batch fits the MRI Systems
    image = torch.randn(3, 1, 32, 24, dtype=torch.complex64)
    assert SingleCoilMRI(masks)(image).shape == (3, 1, 32, 24)
    maps = torch.randn(4, 2, 32, 24, dtype=torch.complex64)
    assert MultiCoilMRI(maps, columns)(image[:1].expand(4, -1, -1, -1)).shape == (4, 2, 32, 24)
    with pytest.raises(ValueError, match="expected 3 seeds .* got 2"):
        batch_masks(func, 3, (32, 24), seeds=[0, 1])
    with pytest.raises(ValueError, match=r"k-space size \(H, W\), got \(1, 32, 24\)"):
        batch_masks(func, 3, (1, 32, 24))


@pytest.mark.parametrize("function", [poisson_disc_mask, variable_density_mask])
def test_bad_arguments_name_what_was_expected(function):
    with pytest.raises(ValueError, match=r"shape must be \(H, W\).*got \(1, 64, 64\)"):
        function((1, 64, 64), 4, (8, 8))
    with pytest.raises(ValueError, match="acceleration must be a number > 1, got 1"):
        function((64, 64), 1, (8, 8))
    with pytest.raises(ValueError, match=r"calib must be.*\(64, 32\), got \(8, 32\)"):
        function((64, 32), 4, (8, 32))
    with pytest.raises(ValueError, match=r"calibration block 40 x 40 = 1600 points.*1024 points"):
        function((64, 64), 4, (40, 40))
    with pytest.raises(ValueError, match="seed must be an integer"):
        function((64, 64), 4, (8, 8), seed=-1)
    with pytest.raises(ValueError, match="accelerations must be a non-empty list"):
        PoissonDiscMaskFunc([4, 0.5])
