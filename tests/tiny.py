"""The sizes that make the tests fast, in one place: trainer settings and a VarNet for a fit of a
few seconds from a config, and the small VarNet that the pruning, fine-tuning and checkpoint tests
build in Python. The fixtures of conftest.py (``tiny_config``, ``make_tiny_config``) are made
from these."""

import json

from deepinv_lab.models import DnCNN
from deepinv_lab.recons import DEQ, VarNet

#: one epoch of two training and two validation batches, quiet
TRAINER = dict(
    max_epochs=1,
    limit_train_batches=2,
    limit_val_batches=2,
    log_every_n_steps=1,
    enable_progress_bar=False,
    enable_model_summary=False,
)

#: the ``init_args`` of a one-cascade VarNet that fits in seconds from a config
VARNET = dict(num_cascades=1, chans=4, num_pool_layers=1, sens_chans=2, sens_num_pool_layers=1)


def overrides(prefix: str, values: dict) -> list[str]:
    """Command-line overrides ``--<prefix>.<key>=<value>`` of ``values``, written as JSON
    (``false``, ``1.0``). The command line reads ``limit_val_batches=1`` as the float 1.0 (the
    Trainer's type lists float first): the whole set, not one batch."""
    return [f"--{prefix}.{key}={json.dumps(value)}" for key, value in values.items()]


def varnet(num_cascades: int = 2, chans: int = 8) -> VarNet:
    """A small VarNet (two cascades by default: two blocks to prune) for tests in Python."""
    return VarNet(
        num_cascades=num_cascades,
        chans=chans,
        num_pool_layers=2,
        sens_chans=4,
        sens_num_pool_layers=1,
    )


def deq() -> DEQ:
    """A small DEQ (a 4-layer DnCNN prior, at most 5 iterations) for tests in Python."""
    denoiser = DnCNN(in_chans=2, num_layers=4, chans=16, batch_norm=False, residual=False)
    return DEQ(denoiser, max_iter=5, on_failure="ignore")
