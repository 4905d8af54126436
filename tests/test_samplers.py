"""Reproducible, sharded, bucketed, resumable sampling (deepinv_lab.data.samplers)."""

import pickle

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from deepinv_lab.data.samplers import (
    EpochSampler,
    ResumableDataLoader,
    SeededIndex,
    SeededSubset,
    item_generator,
)


class Echo(Dataset):
    """Item i: its index, the seed it was given and one random draw from its generator."""

    def __init__(self, size: int, keys=None):
        self.size, self.keys = size, keys

    def __len__(self):
        return self.size

    def __getitem__(self, index):
        draw = torch.rand((), generator=item_generator(index))
        return {"index": int(index), "seed": getattr(index, "seed", -1), "draw": draw}

    def bucket_keys(self):
        return self.keys


def epoch(sampler: EpochSampler, number: int) -> list[int]:
    sampler.set_epoch(number)
    return [int(i) for i in sampler]


def test_seeded_index_is_an_int_that_keeps_its_seed_through_pickling():
    index = SeededIndex(5, 123)
    assert index == 5 and [10, 11, 12, 13, 14, 15][index] == 15
    copy = pickle.loads(pickle.dumps(index))
    assert copy == 5 and copy.seed == 123
    a = torch.rand(3, generator=item_generator(index))
    b = torch.rand(3, generator=item_generator(copy))
    assert torch.equal(a, b)


def test_order_depends_on_seed_and_epoch_only():
    data = Echo(20)
    sampler = EpochSampler(data, shuffle=True, seed=3)
    first, second = epoch(sampler, 0), epoch(sampler, 1)
    assert sorted(first) == list(range(20)) and first != second
    assert epoch(EpochSampler(data, shuffle=True, seed=3), 0) == first
    assert epoch(EpochSampler(data, shuffle=True, seed=4), 0) != first
    assert epoch(EpochSampler(data, shuffle=False), 5) == list(range(20))


def test_item_seeds_do_not_depend_on_the_number_of_processes():
    data = Echo(11)
    single = {}
    sampler = EpochSampler(data, seed=1)
    sampler.set_epoch(2)
    for index in sampler:
        single[int(index)] = index.seed
    shards = []
    for rank in range(3):
        part = EpochSampler(data, seed=1, num_replicas=3, rank=rank)
        part.set_epoch(2)
        shards.append(list(part))
        assert len(shards[-1]) == len(part) == 4  # 11 items padded to 12
    union = [i for shard in shards for i in shard]
    assert sorted(set(map(int, union))) == list(range(11))  # every item, one repeated
    assert all(single[int(i)] == i.seed for i in union)


def test_buckets_batch_items_of_one_shape_on_every_process():
    keys = ["a"] * 7 + ["b"] * 4 + ["c"] * 1
    data = Echo(12, keys)
    for rank in range(2):
        sampler = EpochSampler(
            data, seed=0, batch_size=3, bucket_keys=data.bucket_keys(), num_replicas=2, rank=rank
        )
        sampler.set_epoch(1)
        loader = DataLoader(data, batch_size=3, sampler=sampler)
        batches = list(loader)
        assert len(batches) == len(loader)
        for batch in batches:
            assert len({keys[i] for i in batch["index"].tolist()}) == 1
    # every item appears; incomplete groups are filled from their own bucket
    everything = EpochSampler(data, batch_size=3, bucket_keys=keys)
    assert set(map(int, everything)) == set(range(12))
    dropped = EpochSampler(data, batch_size=3, bucket_keys=keys, drop_last=True)
    assert len(dropped) == 9  # full groups only: a 2, b 1, c none
    with pytest.raises(ValueError, match="3 bucket keys for a dataset of 12"):
        EpochSampler(data, bucket_keys=keys[:3])


def test_resumable_loader_continues_mid_epoch_with_the_same_items():
    data = Echo(10)
    reference = ResumableDataLoader(data, batch_size=3, sampler=EpochSampler(data, seed=7))
    reference.sampler.set_epoch(1)
    expected = list(reference)

    interrupted = ResumableDataLoader(data, batch_size=3, sampler=EpochSampler(data, seed=7))
    interrupted.sampler.set_epoch(1)
    iterator = iter(interrupted)
    seen = [next(iterator), next(iterator)]
    state = interrupted.state_dict()
    assert state == {"epoch": 1, "batches": 2}

    resumed = ResumableDataLoader(data, batch_size=3, sampler=EpochSampler(data, seed=7))
    resumed.load_state_dict(state)
    resumed.sampler.set_epoch(1)
    rest = list(resumed)
    assert len(rest) == 2
    for got, want in zip(seen + rest, expected, strict=True):
        assert torch.equal(got["index"], want["index"]) and torch.equal(got["draw"], want["draw"])
    resumed.sampler.set_epoch(2)  # the skip applies once
    assert len(list(resumed)) == 4


def test_seeded_subset_passes_the_seed_through():
    subset = SeededSubset(Echo(10), [4, 6])
    item = subset[SeededIndex(1, 99)]
    assert item["index"] == 6 and item["seed"] == 99
    assert subset[0]["seed"] == -1 and len(subset) == 2
