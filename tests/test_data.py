"""The built-in brain MRI: the MNI152 template (deepinv_lab.data.builtin) as the source
BuiltinBrain, measured by CartesianMRIPhysics in the preset SimulatedBrainMRIDataModule."""

import pytest
import torch

from deepinv_lab.data.builtin import load_template_slices, split_slices
from deepinv_lab.data.collate import collate_multicoil
from deepinv_lab.data.presets import SimulatedBrainMRIDataModule
from deepinv_lab.data.samplers import SeededIndex
from deepinv_lab.data.sources import BuiltinBrain
from deepinv_lab.functional import ifft2c, rss
from deepinv_lab.systems.mri import MultiCoilMRI

SMALL = dict(image_size=(224, 192), downsample=4, num_coils=4)


def brain(**kwargs) -> SimulatedBrainMRIDataModule:
    return SimulatedBrainMRIDataModule(**{**SMALL, **kwargs})


def test_template_is_real_anatomy():
    slices = load_template_slices()
    assert slices.shape == (189, 233, 197)
    assert slices.max() == 1.0 and slices.min() == 0.0
    middle = slices[80]
    assert 0.3 < (middle > 0.1).mean() < 0.7  # a brain, not an empty or full frame


def test_split_is_disjoint_and_keeps_neighbours_out():
    train, val = set(split_slices("train")), set(split_slices("val"))
    assert train and val and not train & val
    assert not {z + d for z in val for d in (-1, 1)} & train
    with pytest.raises(ValueError, match="split"):
        split_slices("test")


def test_items_have_documented_shapes():
    item = brain().val_set[0]
    assert item["y"].shape == (4, 56, 48) and item["y"].dtype == torch.complex64
    assert item["coil_maps"].shape == (4, 56, 48)
    assert item["mask"].shape == (1, 1, 48)
    assert item["target"].shape == (1, 56, 48) and item["target"].dtype == torch.float32
    assert item["sigma"] == pytest.approx(0.002)  # the preset's default noise level
    # masked columns are exactly zero
    unsampled = item["mask"][0, 0] == 0
    assert unsampled.any() and (item["y"][..., unsampled] == 0).all()


def test_validation_items_are_fixed_training_items_vary():
    data = brain()
    val = data.val_set
    torch.testing.assert_close(val[1]["y"], val[1]["y"])
    torch.testing.assert_close(brain().val_set[1]["y"], val[1]["y"])  # a fresh module too
    assert not torch.equal(brain(seed=1).val_set[1]["y"], val[1]["y"])
    train = data.train_set
    assert not torch.equal(train[0]["y"], train[0]["y"])
    # ... unless the index carries the seed (the project's sampler): then reproducible
    first, again = train[SeededIndex(0, 7)], train[SeededIndex(0, 7)]
    torch.testing.assert_close(first["y"], again["y"], rtol=0, atol=0)
    assert not torch.equal(first["y"], train[SeededIndex(0, 8)]["y"])


def test_fully_sampled_noiseless_kspace_reproduces_the_target():
    data = brain(accelerations=(1,), noise_sigma=0.0).val_set
    item = data[2]
    assert item["mask"].all()
    combined = rss(ifft2c(item["y"]), dim=0, keepdim=True)
    torch.testing.assert_close(combined, item["target"], rtol=1e-4, atol=1e-5)


def test_noise_level_matches_sigma():
    clean = brain(accelerations=(1,), noise_sigma=0.0).val_set[0]["y"]
    noisy = brain(accelerations=(1,), noise_sigma=0.05).val_set[0]["y"]
    measured = (noisy - clean).abs().square().mean().sqrt()
    assert abs(float(measured) - 0.05) < 0.005


def test_collate_builds_a_batched_system():
    data = brain()
    samples = [data.val_set[0], data.val_set[1]]
    batch = data.collate_fn(samples)
    system = batch["system"]
    assert isinstance(system, MultiCoilMRI)
    assert system.mask.shape == (2, 1, 1, 48) and system.coil_maps.shape == (2, 4, 56, 48)
    # the measured k-space is consistent with the System: masking it again changes nothing
    torch.testing.assert_close(system.sampling(batch["y"]), batch["y"])
    # the collate function of fastMRI files builds the same System from these items
    other = collate_multicoil(samples)["system"]
    torch.testing.assert_close(other.mask, system.mask, rtol=0, atol=0)
    torch.testing.assert_close(other.coil_maps, system.coil_maps, rtol=0, atol=0)
    # the example batch of the start-up checks is the first validation item
    example = data.example_batch()
    torch.testing.assert_close(example["y"], batch["y"][:1])
    assert isinstance(example["system"], MultiCoilMRI)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="downsample"):
        brain(image_size=(224, 192), downsample=5)
    with pytest.raises(ValueError, match="image_size"):
        brain(image_size=(300, 192))
    with pytest.raises(ValueError, match="image_size"):
        BuiltinBrain(image_size=(300, 192))


def test_builtin_train_size_is_a_nested_subset_spread_over_the_head():
    def slices(size):
        module = SimulatedBrainMRIDataModule(train_size=size, image_size=(64, 64), downsample=4)
        items = module.train_set.items  # the source's items: no need to measure them
        return [int(items.read(i)[0]["slice_num"]) for i in range(len(items))]

    every = slices(None)
    small, large = slices(5), slices(45)
    assert len(small) == 5 and len(large) == 45
    assert set(small) <= set(large) <= set(every)  # nested: a larger set adds slices
    assert max(small) - min(small) > len(every) // 2  # not the first slices of the head
    with pytest.raises(ValueError, match=r"data.train_size must be between 1 and 91"):
        SimulatedBrainMRIDataModule(train_size=0, image_size=(64, 64), downsample=4)
