"""Fixed random streams of the datasets: one torch generator per tuple of integers.

A dataset draws what must not change between runs (validation crops and noise, a pool of
training crops, a subset of files) from :func:`seeded_generator` of its ``seed`` and a stream
number of its own; fresh training draws come from
:func:`~deepinv_lab.data.samplers.item_generator` instead.
"""

from __future__ import annotations

import numpy as np
import torch


def seeded_generator(*entropy: int) -> torch.Generator:
    """A torch generator seeded from a tuple of integers; distinct tuples give independent
    streams (``numpy.random.SeedSequence``)."""
    seed = np.random.SeedSequence([int(e) for e in entropy]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(seed[0]) << 32 | int(seed[1]))
