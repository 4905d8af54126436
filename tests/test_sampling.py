"""Mask functions against fastMRI 0.3.0's ``fastmri.data.subsample`` (the reference semantics)."""

import itertools

import numpy as np
import pytest
import torch
from fastmri.data import subsample as reference

from deepinv_lab.systems.sampling import (
    EquispacedMaskFractionFunc,
    EquispacedMaskFunc,
    MaskFunc,
    RandomMaskFunc,
    SampledMask,
    create_mask_for_mask_type,
    to_column_mask,
)

CLASS_PAIRS = [
    (RandomMaskFunc, reference.RandomMaskFunc),
    (EquispacedMaskFunc, reference.EquiSpacedMaskFunc),
    (EquispacedMaskFractionFunc, reference.EquispacedMaskFractionFunc),
]
SHAPES = [(1, 320, 368, 2), (1, 640, 372, 2), (15, 640, 369, 2), (1, 10, 33, 2), (4, 101, 2)]
SETTINGS = [  # center_fractions, accelerations, allow_any_combination
    ([0.08], [4], False),
    ([0.04], [8], False),
    ([0.08, 0.04], [4, 8], False),
    ([0.08, 0.04, 0.02], [4, 8], True),
]
SEEDS = [None, 0, 1234, (97, 98, 99)]
OFFSETS = [None, 0, 3]


def _assert_same(ours, theirs):
    (mask, low), (ref_mask, ref_low) = ours, theirs
    assert mask.dtype == ref_mask.dtype == torch.float32
    assert mask.shape == ref_mask.shape
    assert torch.equal(mask, ref_mask)
    assert low == ref_low and isinstance(low, int)


@pytest.mark.parametrize(("ours_cls", "ref_cls"), CLASS_PAIRS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("settings", SETTINGS, ids=str)
@pytest.mark.parametrize("init_seed", [None, 7])
def test_masks_bit_identical_to_fastmri(ours_cls, ref_cls, settings, init_seed):
    center_fractions, accelerations, any_combination = settings
    ours = ours_cls(center_fractions, accelerations, any_combination, init_seed)
    theirs = ref_cls(center_fractions, accelerations, any_combination, init_seed)
    if init_seed is None:  # an OS-seeded generator: start both from the same state
        ours.rng.set_state(theirs.rng.get_state())
    # Several calls in a row: unseeded calls advance the shared generator, so any difference in
    # the number or order of draws shows up in later masks.
    for shape, seed, offset in itertools.product(SHAPES, SEEDS, OFFSETS):
        for _ in range(2):
            _assert_same(ours(shape, offset, seed), theirs(shape, offset, seed))


@pytest.mark.parametrize(("ours_cls", "ref_cls"), CLASS_PAIRS, ids=lambda c: c.__name__)
def test_fastmri_filename_seed(ours_cls, ref_cls):
    # fastMRI seeds validation masks with tuple(map(ord, fname)).
    seed = tuple(map(ord, "file1000000.h5"))
    ours, theirs = ours_cls([0.08], [4]), ref_cls([0.08], [4])
    _assert_same(ours((16, 640, 368, 2), seed=seed), theirs((16, 640, 368, 2), seed=seed))


@pytest.mark.parametrize("mask_cls", [c for c, _ in CLASS_PAIRS], ids=lambda c: c.__name__)
def test_seeded_call_is_reproducible_and_leaves_generator_alone(mask_cls):
    mask_func = mask_cls([0.08, 0.04], [4, 8], seed=3)
    state = mask_func.rng.get_state()
    first, low = mask_func((1, 64, 368, 2), seed=42)
    after = mask_func.rng.get_state()
    np.testing.assert_equal(after, state)
    for _ in range(3):
        mask_func((1, 64, 368, 2))  # advance the generator
        again, low_again = mask_func((1, 64, 368, 2), seed=42)
        assert torch.equal(first, again) and low == low_again


@pytest.mark.parametrize("mask_cls", [c for c, _ in CLASS_PAIRS], ids=lambda c: c.__name__)
def test_mask_content(mask_cls):
    width = 368
    mask, low = mask_cls([0.08], [4], seed=0)((1, 640, width, 2))
    columns = mask.reshape(-1)
    assert low == round(width * 0.08)
    start = (width - low + 1) // 2
    assert columns[start : start + low].eq(1).all()  # the ACS block around DC (width // 2)
    assert set(columns.unique().tolist()) <= {0.0, 1.0}
    assert width / 4 * 0.7 < columns.sum() < width / 4 * 1.3


@pytest.mark.parametrize("mask_cls", [c for c, _ in CLASS_PAIRS], ids=lambda c: c.__name__)
def test_result_is_a_sampled_mask_that_unpacks_as_fastmris(mask_cls):
    sampled = mask_cls([0.08], [4], seed=0)((1, 640, 368, 2), seed=1)
    assert isinstance(sampled, SampledMask) and len(sampled) == 2
    mask, num_low_frequencies = sampled
    assert mask is sampled.mask and num_low_frequencies == sampled.num_low_frequencies
    assert num_low_frequencies == round(368 * 0.08) and isinstance(num_low_frequencies, int)


def test_to_column_mask_broadcasts_against_kspace():
    mask, _ = RandomMaskFunc([0.08], [4], seed=0)((8, 64, 37, 2))
    assert mask.shape == (1, 1, 37, 1)
    column = to_column_mask(mask)
    assert column.shape == (1, 1, 37)
    assert torch.equal(column.reshape(-1), mask.reshape(-1))
    kspace = torch.randn(8, 64, 37, dtype=torch.complex64)
    assert (kspace * column).shape == kspace.shape
    batch = torch.stack([column, column])
    assert batch.shape == (2, 1, 1, 37)
    with pytest.raises(ValueError, match=r"\(1, \.\.\., 1, W, 1\)"):
        to_column_mask(torch.ones(1, 4, 37, 1))


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("random", RandomMaskFunc),
        ("equispaced", EquispacedMaskFunc),
        ("equispaced_fraction", EquispacedMaskFractionFunc),
    ],
)
def test_factory(name, cls):
    mask_func = create_mask_for_mask_type(name, [0.08], [4])
    assert type(mask_func) is cls and isinstance(mask_func, MaskFunc)
    ref = reference.create_mask_for_mask_type(name, [0.08], [4])
    _assert_same(mask_func((1, 32, 100, 2), seed=5), ref((1, 32, 100, 2), seed=5))


def test_bad_arguments():
    with pytest.raises(ValueError, match="center_fractions.*accelerations"):
        RandomMaskFunc([0.08, 0.04], [4])
    RandomMaskFunc([0.08, 0.04], [4], allow_any_combination=True)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        RandomMaskFunc([1.5], [4])
    with pytest.raises(ValueError, match=">= 1"):
        RandomMaskFunc([0.08], [0])
    with pytest.raises(ValueError, match="non-empty"):
        RandomMaskFunc([], [])
    with pytest.raises(ValueError, match="integers"):
        EquispacedMaskFunc([0.08], [2.5])
    with pytest.raises(ValueError, match="equispaced_fraction"):
        create_mask_for_mask_type("poisson", [0.08], [4])
    mask_func = EquispacedMaskFunc([0.08], [4])
    with pytest.raises(ValueError, match="3 or more"):
        mask_func((368, 2))
    with pytest.raises(ValueError, match="offset"):
        mask_func((1, 8, 368, 2), offset=-1)
    with pytest.raises(ValueError, match="center"):
        EquispacedMaskFractionFunc([0.3], [4])((1, 8, 368, 2))
