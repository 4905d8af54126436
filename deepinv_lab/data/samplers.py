"""Reproducible, distributed, shape-bucketed and resumable sampling.

Three pieces make a training run independent of how it is executed -- one process or several
(DDP), DataLoader workers or none, interrupted and resumed or not:

* :class:`SeededIndex` -- a dataset index (an ``int``) that also carries the seed of the item's
  random draws (crops, flips, masks, noise). Datasets get their generator from
  :func:`item_generator`, so an item depends only on ``(seed, epoch, index)``, never on which
  process or worker reads it, nor on what was read before.
* :class:`EpochSampler` -- a :class:`~torch.utils.data.DistributedSampler` (Lightning leaves it in
  place under DDP) that shuffles by ``(seed, epoch)``, shards the epoch over the processes, and
  optionally groups items into batches of one shape (``bucket_keys``: different coil counts and
  matrix sizes of fastMRI slices).
* :class:`ResumableDataLoader` -- a DataLoader with ``state_dict``/``load_state_dict``: Lightning
  stores the number of batches consumed in the current epoch in every checkpoint, and a resumed
  run continues with the next batch instead of starting the epoch over.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler


class SeededIndex(int):
    """A dataset index that carries the seed of the item's random draws.

    It is an ``int`` (``dataset[SeededIndex(3, seed)]`` reads item 3 of any dataset); datasets
    that know about it get a reproducible generator from :func:`item_generator`.
    """

    seed: int

    def __new__(cls, index: int, seed: int) -> SeededIndex:
        value = super().__new__(cls, index)
        value.seed = int(seed)
        return value

    def __reduce__(self):  # pickled to DataLoader workers with its seed
        return (SeededIndex, (int(self), self.seed))

    def __repr__(self) -> str:
        return f"SeededIndex({int(self)}, seed={self.seed})"


def derive_seed(*entropy: int) -> int:
    """A 63-bit seed from a tuple of non-negative integers; distinct tuples give independent
    streams (``numpy.random.SeedSequence``)."""
    words = np.random.SeedSequence([int(e) for e in entropy]).generate_state(2, dtype=np.uint32)
    return (int(words[0]) << 31) ^ int(words[1])


def item_generator(index: int) -> torch.Generator:
    """The generator of a training item's random draws.

    Seeded by ``index.seed`` when ``index`` is a :class:`SeededIndex` (the project's samplers:
    reproducible across workers, processes and resumed runs), otherwise from torch's global RNG
    (which Lightning seeds per DataLoader worker), as any PyTorch dataset would.
    """
    seed = getattr(index, "seed", None)
    if seed is None:
        seed = int(torch.randint(0, 2**62, ()))
    return torch.Generator().manual_seed(seed)


def _distributed() -> tuple[int, int]:
    """``(world size, rank)`` of the default process group, ``(1, 0)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


class EpochSampler(DistributedSampler):
    """Per-epoch order of a dataset, sharded over processes, optionally bucketed by shape.

    Every epoch the items are (if ``shuffle``) permuted by a generator seeded with
    ``(seed, epoch)``; each yielded index is a :class:`SeededIndex` whose seed depends on
    ``(seed, epoch, index)`` only. Under DDP, process ``r`` of ``R`` takes every ``R``-th entry
    (or batch, with buckets); like :class:`~torch.utils.data.DistributedSampler`, the order is
    padded by repeating its first entries so that every process gets as many, which duplicates
    a few items in one epoch (validation metrics count each ``(volume_id, slice_num)`` once).

    With ``bucket_keys`` (one hashable key per item, e.g. the k-space shape), the items of each
    key are cut into groups of ``batch_size`` (the last one of a key completed with repeats of
    that key's items, or dropped if ``drop_last``) and the groups are shuffled: a DataLoader
    with the same ``batch_size`` then only ever batches items of one key.

    Args:
        dataset: any sized dataset.
        shuffle: permute every epoch (training) or keep the dataset's order (evaluation).
        seed: the run's seed (``seed_everything``).
        batch_size: the DataLoader's batch size; needed with ``bucket_keys``.
        bucket_keys: ``len(dataset)`` hashable keys, or None for no bucketing.
        drop_last: drop the incomplete last group of each bucket instead of padding it (only
            with ``bucket_keys``; without, the DataLoader's own ``drop_last`` applies).
        num_replicas, rank: the processes; default: the initialized process group, or one.
    """

    def __init__(
        self,
        dataset: Dataset,
        shuffle: bool = True,
        seed: int = 0,
        batch_size: int = 1,
        bucket_keys: Sequence[Hashable] | None = None,
        drop_last: bool = False,
        num_replicas: int | None = None,
        rank: int | None = None,
    ):
        world, this_rank = _distributed()
        super().__init__(
            dataset,
            num_replicas=world if num_replicas is None else num_replicas,
            rank=this_rank if rank is None else rank,
            shuffle=shuffle,
            seed=seed,
        )
        if batch_size < 1:
            raise ValueError(f"EpochSampler: batch_size must be >= 1, got {batch_size}")
        if bucket_keys is not None and len(bucket_keys) != len(dataset):
            raise ValueError(
                f"EpochSampler: {len(bucket_keys)} bucket keys for a dataset of {len(dataset)} "
                "items; give one key per item"
            )
        self.batch_size = batch_size
        self.bucket_keys = None if bucket_keys is None else list(bucket_keys)
        self.drop_last_group = drop_last
        self._skip = 0
        self._resume_epoch: int | None = None

    # --- order --------------------------------------------------------------------------------

    def _groups(self, generator: torch.Generator) -> list[list[int]]:
        """The epoch's entries: single items, or batches of one bucket key."""
        size = len(self.dataset)
        if self.shuffle:
            order = torch.randperm(size, generator=generator).tolist()
        else:
            order = list(range(size))
        if self.bucket_keys is None:
            return [[i] for i in order]
        buckets: dict[Hashable, list[int]] = {}
        for i in order:  # keys in order of first appearance: deterministic
            buckets.setdefault(self.bucket_keys[i], []).append(i)
        groups = []
        for members in buckets.values():
            for start in range(0, len(members), self.batch_size):
                group = members[start : start + self.batch_size]
                if len(group) < self.batch_size:
                    if self.drop_last_group:
                        continue
                    repeats = math.ceil(self.batch_size / len(members))
                    group = (group + members * repeats)[: self.batch_size]
                groups.append(group)
        if self.shuffle:
            groups = [groups[i] for i in torch.randperm(len(groups), generator=generator)]
        return groups

    def _shard(self) -> list[int]:
        generator = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch))
        groups = self._groups(generator)
        if not groups:
            return []
        total = math.ceil(len(groups) / self.num_replicas) * self.num_replicas
        groups = (groups * math.ceil(total / len(groups)))[:total]  # pad by repeating the first
        return [i for group in groups[self.rank : total : self.num_replicas] for i in group]

    def __iter__(self) -> Iterator[SeededIndex]:
        indices = self._shard()
        if self._resume_epoch is not None:
            if self._resume_epoch == self.epoch:
                indices = indices[self._skip :]
            self._resume_epoch, self._skip = None, 0
        for i in indices:
            yield SeededIndex(i, derive_seed(self.seed, self.epoch, i))

    def __len__(self) -> int:
        if self.bucket_keys is None:
            return math.ceil(len(self.dataset) / self.num_replicas)
        return len(self._shard())

    def resume(self, epoch: int, skip: int) -> None:
        """Skip the first ``skip`` indices of the next iteration if it is epoch ``epoch``."""
        self._resume_epoch, self._skip = int(epoch), int(skip)


class ResumableDataLoader(DataLoader):
    """A DataLoader over an :class:`EpochSampler` that Lightning can checkpoint mid-epoch.

    ``state_dict()`` is ``{"epoch", "batches"}``: the sampler's epoch and the number of batches
    this epoch's iterator has handed out (Lightning does not prefetch from loaders with a
    length, so that is the number of batches trained on). ``load_state_dict`` makes the next
    iteration of that epoch skip those batches' indices without loading them.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._batches = 0

    def __iter__(self):
        self._batches = 0
        for batch in super().__iter__():
            self._batches += 1
            yield batch

    def state_dict(self) -> dict:
        return {"epoch": int(getattr(self.sampler, "epoch", 0)), "batches": self._batches}

    def load_state_dict(self, state: dict) -> None:
        if not isinstance(self.sampler, EpochSampler):
            return
        batch_size = self.batch_size or 1
        self.sampler.resume(state["epoch"], state["batches"] * batch_size)


class SeededSubset(Dataset):
    """The items ``indices`` of ``dataset``, passing a :class:`SeededIndex`'s seed through
    (``torch.utils.data.Subset`` would turn it into a plain ``int``)."""

    def __init__(self, dataset: Dataset, indices: Sequence[int]):
        self.dataset = dataset
        self.indices = list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int):
        inner = self.indices[index]
        seed = getattr(index, "seed", None)
        return self.dataset[inner if seed is None else SeededIndex(inner, seed)]

    def __getattr__(self, name: str):  # dataset attributes (e.g. channels) stay visible
        if name in ("dataset", "indices"):
            raise AttributeError(name)
        return getattr(self.dataset, name)
