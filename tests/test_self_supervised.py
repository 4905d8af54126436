"""SSDU's building blocks: the mask split (selection, granularity, ACS protection), masked Systems
rebuilt with another mask (``with_mask``), the SSDU loss, and the Recons' measurement estimates."""

import pytest
import torch

from deepinv_lab.errors import UserError
from deepinv_lab.functional import ifft2c, rss
from deepinv_lab.models import DnCNN
from deepinv_lab.models.sensitivity import acs_window
from deepinv_lab.recons import MoDL, ZeroFilled
from deepinv_lab.systems.masking import Inpainting
from deepinv_lab.systems.mri import KSpaceMask, MultiCoilFourier, MultiCoilMRI, SingleCoilMRI
from deepinv_lab.training.self_supervised import split_mask, ssdu_loss
from tests import tiny

pytestmark = pytest.mark.usefixtures("isolated_rng")


@pytest.fixture(scope="module")
def batch(mri_batch):
    return mri_batch


def column_mask(batch: int = 4, width: int = 320, acs: int = 26, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    mask = (torch.rand(batch, 1, 1, width, generator=generator) < 0.25).float()
    start = (width - acs + 1) // 2
    mask[..., start : start + acs] = 1
    return mask


# --- split_mask -----------------------------------------------------------------------------


def test_column_mask_split_is_disjoint_keeps_the_acs_and_holds_out_the_fraction():
    mask = column_mask()
    theta, lam = split_mask(mask, 0.4)
    assert theta.shape == lam.shape == mask.shape and theta.dtype == mask.dtype
    assert torch.equal(theta + lam, mask) and not (theta * lam).any()
    acs = acs_window(mask.shape[-1], mask)
    assert (theta[acs.expand_as(theta)] == 1).all()
    sampled = mask.flatten(1).sum(1)
    fraction = lam.flatten(1).sum(1) / sampled
    assert ((fraction - 0.4).abs() <= 0.5 / sampled).all()
    assert not torch.equal(lam[0], lam[1])  # every sample its own split ...
    same = column_mask().expand(4, -1, -1, -1).contiguous()  # ... even with one shared mask
    _, lam_same = split_mask(same, 0.4)
    assert len({tuple(row.flatten().tolist()) for row in lam_same}) == 4
    # reproducible with a generator, fresh without
    first = split_mask(mask, 0.4, torch.Generator().manual_seed(1))[1]
    assert torch.equal(first, split_mask(mask, 0.4, torch.Generator().manual_seed(1))[1])
    assert not torch.equal(first, split_mask(mask, 0.4)[1])


def test_the_given_acs_width_is_protected_too():
    mask = torch.zeros(1, 1, 1, 32)
    mask[..., 12:20] = 1  # an 8-column block, of which the mask alone shows all 8
    mask[..., 10] = 1
    theta, lam = split_mask(mask, 0.9, num_low_frequencies=8)
    assert (theta[..., 12:20] == 1).all() and lam[..., 10] == 1
    mask[..., 15] = 0  # the derived ACS shrinks to 0 ... the given width still protects 8
    theta, _ = split_mask(mask, 0.9, num_low_frequencies=8)
    assert torch.equal(theta[..., 12:20], mask[..., 12:20])
    # one mask shared by the batch, an ACS width per sample: a split per sample
    theta, lam = split_mask(mask, 0.9, num_low_frequencies=torch.tensor([8, 2]))
    assert theta.shape == (2, 1, 1, 32) and torch.equal(theta + lam, mask.expand(2, -1, -1, -1))
    assert torch.equal(theta[0, ..., 12:20], mask[0, ..., 12:20]) and lam[1, ..., 12] == 1


def test_2d_mask_split_protects_the_central_block():
    generator = torch.Generator().manual_seed(0)
    mask = (torch.rand(3, 1, 40, 36, generator=generator) < 0.3).float()
    mask[..., 18:22, 16:20] = 1
    theta, lam = split_mask(mask, 0.5)
    assert torch.equal(theta + lam, mask) and not (theta * lam).any()
    assert (theta[..., 18:22, 16:20] == 1).all()
    fraction = lam.flatten(1).sum(1) / mask.flatten(1).sum(1)
    assert torch.allclose(fraction, torch.full_like(fraction, 0.5), atol=0.01)
    theta, _ = split_mask(mask, 0.5, center_block=8)
    assert (theta[..., 16:24, 14:22] == mask[..., 16:24, 14:22]).all()


@pytest.mark.parametrize("holdout", [0, 1, 1.5, -0.1])
def test_bad_holdout(holdout):
    with pytest.raises(ValueError, match=r"holdout must be in \(0, 1\)"):
        split_mask(column_mask(), holdout)


# --- with_mask, ssdu_loss ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind", [MultiCoilMRI, MultiCoilFourier, SingleCoilMRI, KSpaceMask, Inpainting]
)
def test_with_mask_keeps_the_system_and_swaps_its_mask(kind):
    system, x = kind.example()
    if kind is SingleCoilMRI:
        x = torch.randn(2, 1, 8, 7, dtype=torch.complex64)
    new_mask = (torch.rand_like(system.mask) > 0.5).to(system.mask.dtype)
    rebuilt = system.with_mask(new_mask)
    assert type(rebuilt) is kind and torch.equal(rebuilt.mask, new_mask)
    unmasked = system.with_mask(torch.ones_like(system.mask))(x)
    torch.testing.assert_close(rebuilt(x), new_mask * unmasked)
    if kind is MultiCoilMRI:
        assert torch.equal(rebuilt.coil_maps, system.coil_maps)


def test_with_mask_keeps_the_acs_width():
    mask = column_mask(batch=2, width=32, acs=4)
    system = MultiCoilFourier(mask, torch.tensor([4, 6]))
    point_mask = mask.expand(2, 1, 8, 32).contiguous()
    rebuilt = system.with_mask(point_mask)
    assert rebuilt.num_low_frequencies.tolist() == [4, 6] and rebuilt.mask.shape == (2, 1, 8, 32)


def test_ssdu_loss_vanishes_iff_the_estimate_matches_on_lambda():
    generator = torch.Generator().manual_seed(0)
    y = torch.randn(2, 3, 8, 10, dtype=torch.complex64, generator=generator)
    lam = torch.zeros(2, 1, 1, 10)
    lam[..., ::3] = 1
    assert ssdu_loss(y.clone(), y, lam) == 0
    off_lambda = y + (1 - lam) * torch.randn(y.shape, dtype=y.dtype, generator=generator)
    assert ssdu_loss(off_lambda, y, lam) == 0
    on_lambda = y + 0.5 * lam * y
    # per sample: ||0.5 Lambda y|| / ||Lambda y|| in l2 and l1 alike
    torch.testing.assert_close(ssdu_loss(on_lambda, y, lam), torch.tensor(1.0))
    with pytest.raises(ValueError, match="differ in shape"):
        ssdu_loss(y[:1], y, lam)


# --- measurement_estimate -----------------------------------------------------------------------


def test_deq_and_modl_estimate_their_complex_solution_observed_by_the_system(batch):
    torch.manual_seed(0)
    y, system = batch["y"], batch["system"]
    modl = MoDL(DnCNN(in_chans=2, num_layers=3, chans=8, batch_norm=False), num_iterations=2)
    with torch.no_grad():
        for recon in (tiny.deq(), modl):
            solution = recon.solution(y, system)
            assert solution.is_complex() and solution.shape == (2, 1, *y.shape[-2:])
            assert torch.equal(recon(y, system), solution.abs())
            estimate = recon.measurement_estimate(y, system)
            assert torch.equal(estimate, system(solution))
            assert estimate.shape == y.shape and not (estimate * (1 - system.mask)).any()
            # observed through the fully sampled System: the unmasked prediction
            full = system.with_mask(torch.ones_like(system.mask))
            unmasked = recon.measurement_estimate(y, system, full)
            torch.testing.assert_close(unmasked * system.mask, estimate)
            assert (unmasked * (1 - system.mask)).abs().sum() > 0


def test_varnet_estimate_is_its_final_kspace(batch):
    torch.manual_seed(0)
    y, system = batch["y"], batch["system"]
    varnet = tiny.varnet()
    with torch.no_grad():
        kspace = varnet.kspace(y, system)
        assert torch.equal(varnet(y, system), rss(ifft2c(kspace), dim=1, keepdim=True))
        assert torch.equal(varnet.measurement_estimate(y, system), kspace * system.mask)
        theta, _ = split_mask(system.mask, 0.4)
        observed = varnet.measurement_estimate(y * theta, system.with_mask(theta), system)
        assert torch.equal(
            observed, varnet.kspace(y * theta, system.with_mask(theta)) * system.mask
        )


def test_a_recon_without_estimate_says_so(batch):
    with pytest.raises(UserError, match="ZeroFilled does not provide measurement_estimate"):
        ZeroFilled().measurement_estimate(batch["y"], batch["system"])


# --- SSDU's own choices: point splits of column masks, Gaussian selection ----------------------


def test_point_splits_of_a_column_mask_hold_out_points_of_the_sampled_columns():
    mask = column_mask(batch=3, width=64, acs=8)
    theta, lam = split_mask(mask, 0.4, torch.Generator().manual_seed(0), granularity="points",
                            height=48)  # fmt: skip
    full = mask.expand(3, 1, 48, 64)
    assert theta.shape == lam.shape == (3, 1, 48, 64)
    assert torch.equal(theta + lam, full) and not (theta * lam).any()
    acs = acs_window(64, mask).expand(3, 1, 48, 64)
    assert (theta[acs] == 1).all()
    # single points, not whole columns: a held-out column keeps some of its points in Theta
    held_columns = lam.sum(dim=2) > 0
    assert ((theta.sum(dim=2) > 0) & held_columns).any()
    fraction = lam.flatten(1).sum(1) / full.flatten(1).sum(1)
    assert torch.allclose(fraction, torch.full_like(fraction, 0.4), atol=0.01)
    with pytest.raises(UserError, match="need its height"):
        split_mask(mask, 0.4, granularity="points")


def test_gaussian_selection_holds_out_more_near_the_centre_than_uniform():
    mask = torch.ones(64, 1, 64, 64)
    near, far = slice(24, 40), slice(0, 8)
    counts = {}
    for selection in ("uniform", "gaussian"):
        theta, lam = split_mask(mask, 0.3, torch.Generator().manual_seed(0), selection=selection)
        assert torch.equal(theta + lam, mask)
        counts[selection] = (lam[..., near, near].mean(), lam[..., far, far].mean())
    uniform_near, uniform_far = counts["uniform"]
    gaussian_near, gaussian_far = counts["gaussian"]
    assert abs(uniform_near - uniform_far) < 0.05
    # density exp(-r^2 / (2 (n/4)^2)): the centre is held out several times more than a corner
    assert gaussian_near > 2 * uniform_near and gaussian_far < 0.2 * uniform_far
