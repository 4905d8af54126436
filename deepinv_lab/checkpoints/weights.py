"""Loading a Recon's weights from a checkpoint: the one loader behind ``init_from``,
``Refinement(recon_checkpoint=...)``, ``GANModule(generator_checkpoint=...)``, ``prune``'s
input and its distillation teacher."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from deepinv_lab.checkpoints.reading import read_checkpoint
from deepinv_lab.checkpoints.structure import STRUCTURE_KEY, apply_structure
from deepinv_lab.errors import UserError

RECON_PREFIX = "recon."


def recon_state(
    checkpoint: dict[str, Any],
) -> tuple[dict[str, torch.Tensor], dict[str, dict[str, int]] | None]:
    """The Recon's weights in ``checkpoint`` and its pruned architecture (None if unpruned).

    A Lightning checkpoint of a ``ReconModule`` (or a subclass such as ``GANModule``) keeps the
    Recon under ``recon.``; a plain state dict of the Recon itself
    is taken as it is.
    """
    state = checkpoint.get("state_dict", checkpoint)
    structure = checkpoint.get(STRUCTURE_KEY)
    if any(key.startswith(RECON_PREFIX) for key in state):
        state = {
            key.removeprefix(RECON_PREFIX): value
            for key, value in state.items()
            if key.startswith(RECON_PREFIX)
        }
        if structure is not None:
            structure = {
                name.removeprefix(RECON_PREFIX): attributes
                for name, attributes in structure.items()
                if name.startswith(RECON_PREFIX)
            }
    return state, structure


def load_recon_weights(
    recon: nn.Module,
    path: str | Path,
    option: str = "init_from",
    checkpoint: dict[str, Any] | None = None,
) -> bool:
    """Load the Recon weights of the checkpoint ``path`` into ``recon``, resized first to the
    checkpoint's pruned architecture if it has one (then True is returned).

    ``option`` names what gave the path (``init_from``, ``recon_checkpoint``, ...): every
    :class:`~deepinv_lab.errors.UserError` starts with it and names the file and the layers
    that do not fit. ``checkpoint``: the file's contents, when the caller has read it already.
    """
    if checkpoint is None:
        checkpoint = read_checkpoint(path, option)
    state, structure = recon_state(checkpoint)
    source = f"{option}: checkpoint {str(path)!r}"
    if structure is not None:
        try:
            apply_structure(recon, structure, state)
        except UserError as error:
            raise UserError(f"{source}: {error}") from None
    elif state_mismatch(recon, state):
        # a plain state dict of the Recon's network alone, e.g. fastMRI's published U-Net
        # weights for a PostProcessing(Unet) Recon: loaded into the one submodule it fits
        network = network_for_state(recon, state)
        if network is not None:
            load_state_checked(network, state, source)
            return False
    load_state_checked(recon, state, source)
    return structure is not None


def network_for_state(module: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module | None:
    """The one proper submodule of ``module`` that ``state`` fits exactly (keys and shapes), or
    None when none or several do."""
    fits = [
        child
        for name, child in module.named_modules()
        if name and child.state_dict() and not state_mismatch(child, state)
    ]
    return fits[0] if len(fits) == 1 else None


def load_state_checked(module: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """``module.load_state_dict(state)`` after checking that every key and shape fits; the
    UserError starts with ``source`` (e.g. ``"init_from: checkpoint 'x.ckpt'"``) and names the
    keys missing, unexpected or of another shape."""
    problems = state_mismatch(module, state)
    if problems:
        raise UserError(
            f"{source} does not fit {type(module).__name__} as configured ({problems}); use the "
            "same architecture arguments it was trained with"
        )
    module.load_state_dict(state)


def state_mismatch(module: nn.Module, state: dict[str, torch.Tensor]) -> str:
    """What keeps ``state`` from loading into ``module``: the keys missing, unexpected or of
    another shape (at most three of each), or ``""`` when it fits."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [
        f"{key}: {tuple(state[key].shape)} in the file, {tuple(value.shape)} here"
        for key, value in expected.items()
        if key in state and tuple(state[key].shape) != tuple(value.shape)
    ]
    return "; ".join(
        f"{label} {items[:3]}{' ...' if len(items) > 3 else ''}"
        for label, items in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("shape mismatch", wrong),
        )
        if items
    )
