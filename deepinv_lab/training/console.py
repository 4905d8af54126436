"""Notes for the user on the console, from the first process only."""

from __future__ import annotations

import sys

from pytorch_lightning.utilities.rank_zero import rank_zero_only


def say(message: str) -> None:
    """Print ``message`` to stderr once, from the first process of a DDP run."""
    if rank_zero_only.rank == 0:
        print(message, file=sys.stderr, flush=True)
