"""Learning-rate schedules from configs: any torch scheduler, or DeepInPy's StepLR shorthand."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch

from deepinv_lab.errors import UserError

#: DeepInPy's shorthand ``[factor, every_n_epochs]``: multiply the learning rate by ``factor``
#: every ``every_n_epochs`` epochs (``StepLR(step_size=every_n_epochs, gamma=factor)``).
StepShorthand = tuple[float, int]


def make_scheduler(
    spec: Callable | StepShorthand | list | None,
) -> Callable | None:
    """The scheduler factory (called with the optimizer) of a config's ``lr_scheduler``.

    ``None`` stays None; a callable (a scheduler class or a LightningCLI factory) is returned
    unchanged; ``[factor, every_n_epochs]`` becomes a ``StepLR`` factory. A bad shorthand raises
    a ``ValueError`` naming ``lr_scheduler``.
    """
    if spec is None or callable(spec):
        return spec
    if isinstance(spec, (list, tuple)) and len(spec) == 2:
        factor, every = spec
        if isinstance(every, float) and every.is_integer():
            every = int(every)
        if not (isinstance(factor, (int, float)) and 0 < factor <= 1):
            raise UserError(
                f"lr_scheduler: the shorthand is [factor, every_n_epochs] with 0 < factor <= 1, "
                f"got factor {factor!r}"
            )
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise UserError(
                f"lr_scheduler: the shorthand is [factor, every_n_epochs] with an integer "
                f"every_n_epochs >= 1, got {every!r}"
            )
        return partial(torch.optim.lr_scheduler.StepLR, step_size=every, gamma=float(factor))
    raise UserError(
        f"lr_scheduler must be a scheduler (class_path/init_args), [factor, every_n_epochs] or "
        f"null, got {spec!r}"
    )
