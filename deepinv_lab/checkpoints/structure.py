"""A pruned network's architecture, recorded beside its weights and restored on load.

A config builds the *unpruned* Recon; a pruned checkpoint carries, under
:data:`STRUCTURE_KEY`, the channel counts of every layer (``in_channels``, ``out_channels``,
``num_features``, ...). Loading resizes the layers to them, then the weights load as usual: so
``deepinv-lab test``/``predict`` and ``load_from_checkpoint`` take a pruned checkpoint like any
other.

A module resized to a pruned architecture (by pruning, or by loading a pruned checkpoint) is
marked (:func:`mark_pruned_architecture`), so that a module holding it, e.g. a ``Refinement``
whose first stage came from a pruned checkpoint, records the architecture in its own
checkpoints (:func:`has_pruned_architecture`). Only pruned checkpoints carry one: an unpruned
checkpoint whose shapes differ from the config's Recon is a mismatch to report, not a shape to
adopt.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from deepinv_lab.errors import UserError

#: the checkpoint key of the pruned architecture
STRUCTURE_KEY = "pruned_structure"
_MARK = "_deepinv_lab_pruned_architecture"
#: the layer attributes that describe channel counts
CHANNEL_ATTRIBUTES = (
    "in_channels",
    "out_channels",
    "num_features",
    "num_channels",
    "in_features",
    "out_features",
)


def structure_of(module: nn.Module) -> dict[str, dict[str, int]]:
    """Every submodule's channel attributes, by submodule name."""
    structure = {}
    for name, sub in module.named_modules():
        attributes = {a: getattr(sub, a) for a in CHANNEL_ATTRIBUTES if hasattr(sub, a)}
        attributes = {a: v for a, v in attributes.items() if isinstance(v, int)}
        if attributes:
            structure[name] = attributes
    return structure


def apply_structure(
    module: nn.Module, structure: Mapping[str, Mapping[str, int]], state_dict: Mapping
) -> list[str]:
    """Give ``module`` the recorded ``structure``: set the channel attributes and resize every
    parameter and buffer whose shape differs in ``state_dict`` (their values are then loaded
    from it) and mark it (:func:`mark_pruned_architecture`). Returns the names of the resized
    tensors; a UserError names a layer that ``module`` does not have."""
    modules = dict(module.named_modules())
    for name, attributes in structure.items():
        if name not in modules:
            raise UserError(
                f"the pruned checkpoint describes layer {name!r}, which the config's Recon does "
                "not have: the checkpoint does not match the config (another Recon class or "
                "other architecture arguments)"
            )
        for attribute, value in attributes.items():
            setattr(modules[name], attribute, value)
    resized = []
    for name, sub in modules.items():
        for kind in ("_parameters", "_buffers"):
            tensors = getattr(sub, kind)
            for local, tensor in list(tensors.items()):
                key = f"{name}.{local}" if name else local
                if tensor is None or key not in state_dict:
                    continue
                shape = tuple(state_dict[key].shape)
                if tuple(tensor.shape) == shape:
                    continue
                fresh = torch.empty(shape, dtype=tensor.dtype, device=tensor.device)
                if kind == "_parameters":
                    fresh = nn.Parameter(fresh, requires_grad=tensor.requires_grad)
                tensors[local] = fresh
                resized.append(key)
    mark_pruned_architecture(module)
    return resized


def mark_pruned_architecture(module: nn.Module) -> None:
    """Record that ``module`` has been resized to a pruned architecture."""
    object.__setattr__(module, _MARK, True)


def has_pruned_architecture(module: nn.Module) -> bool:
    """True when ``module`` or one of its submodules has been resized to a pruned architecture
    (its checkpoints must then carry :func:`structure_of` it)."""
    return any(getattr(sub, _MARK, False) for sub in module.modules())
