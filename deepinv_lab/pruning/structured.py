"""Structured channel pruning of the Model blocks inside a Recon, with torch-pruning.

The networks pruned are the *leaf* Model blocks of a Recon (those containing no other Model):
each VarNet cascade's U-Net (inside its NormUnet, whose complex boundary is not a convolution
and stays as it is), the DEQ/MoDL denoiser, RCAN. The coil-sensitivity network is left alone
unless asked. In each network, channels are removed with torch-pruning's DependencyGraph, which
removes every coupled channel at once (a convolution's outputs, the next convolution's inputs,
the skip connection concatenated with them); the network's input channels (the data: for a
VarNet's U-Net, the real and imaginary parts) are never pruned, and its output convolution is
protected, so every block keeps its input and output shapes and the Recon keeps its.

Importance of a channel group: ``l1``/``l2``, the norm of its weights (Li et al., 2017), or
``taylor``, |weight x gradient| of a loss (Molchanov et al., 2019; needs ``loss``). Scope:
``per_block`` removes ``ratio`` of the channels of every block, ``global`` ranks the groups of
all blocks together (Park et al., 2024 prune the prior of a model-based network as a whole).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from deepinv_lab.checkpoints import mark_pruned_architecture
from deepinv_lab.errors import UserError
from deepinv_lab.models.base import Model
from deepinv_lab.models.dncnn import BiasFreeBatchNorm2d
from deepinv_lab.models.layers import PIXEL_SHUFFLES
from deepinv_lab.models.sensitivity import SensitivityModel

IMPORTANCES = ("l1", "l2", "taylor")
SCOPES = ("per_block", "global")


class PruningError(UserError):
    """Nothing to prune, or a bad pruning argument: the message names it."""


@dataclass(frozen=True)
class BlockPruning:
    """What pruning did to one block: its parameters and convolution channels before/after."""

    name: str
    params_before: int
    params_after: int
    channels_before: int
    channels_after: int


def prunable_blocks(recon: nn.Module, include_sensitivity: bool = False) -> dict[str, nn.Module]:
    """The leaf Model blocks of ``recon`` by name (a module called several times, e.g. MoDL's
    shared denoiser, once); those inside a :class:`SensitivityModel` only if
    ``include_sensitivity``. :class:`PruningError` when there is none."""
    blocks: dict[str, nn.Module] = {}
    seen: set[int] = set()
    for name, module in recon.named_modules():
        if not isinstance(module, Model) or id(module) in seen:
            continue
        if any(isinstance(child, Model) for child in module.modules() if child is not module):
            continue
        if not include_sensitivity and _inside(recon, name, SensitivityModel):
            continue
        if not any(isinstance(m, nn.modules.conv._ConvNd) for m in module.modules()):
            continue
        blocks[name] = module
        seen.add(id(module))
    if not blocks:
        kind = type(recon).__name__
        raise PruningError(
            f"nothing to prune in {kind}: it holds no convolutional Model block"
            + ("" if include_sensitivity else " outside its coil-sensitivity network")
        )
    return blocks


def block_inputs(
    recon: nn.Module, blocks: dict[str, nn.Module], run: Callable[[], Any]
) -> dict[str, tuple]:
    """The arguments each block receives when ``run()`` runs ``recon`` (its first call)."""
    inputs: dict[str, tuple] = {}
    names = {id(block): name for name, block in blocks.items()}

    def keep(module, args):
        inputs.setdefault(names[id(module)], tuple(a.detach() for a in args))

    run_hooked(blocks.values(), keep, run, pre=True)
    missing = [name for name in blocks if name not in inputs]
    if missing:
        raise PruningError(f"blocks {missing} did not run on the example batch")
    return inputs


def prune_blocks(
    blocks: dict[str, nn.Module],
    inputs: dict[str, tuple],
    ratio: float,
    importance: str = "l1",
    scope: str = "per_block",
    loss: Callable[[], torch.Tensor] | None = None,
) -> list[BlockPruning]:
    """Remove ``ratio`` of the channels of ``blocks`` in place (see the module docstring).

    Args:
        blocks: from :func:`prunable_blocks`.
        inputs: each block's example arguments (:func:`block_inputs`).
        ratio: the fraction of channels removed, in (0, 1).
        importance: ``l1``, ``l2`` or ``taylor``.
        scope: ``per_block`` or ``global``.
        loss: for ``taylor``: computes a loss of the whole Recon whose gradients rank channels.
    """
    import torch_pruning as tp

    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 < ratio < 1:
        raise PruningError(f"prune.ratio must be in (0, 1), got {ratio!r}")
    if importance not in IMPORTANCES:
        raise PruningError(f"prune.importance must be one of {IMPORTANCES}, got {importance!r}")
    if scope not in SCOPES:
        raise PruningError(f"prune.scope must be one of {SCOPES}, got {scope!r}")
    if importance == "taylor":
        if loss is None:
            raise PruningError("prune.importance taylor needs a loss to take gradients of")
        for block in blocks.values():
            block.zero_grad()
        loss().backward()
        criterion = tp.importance.GroupTaylorImportance()
    else:
        criterion = tp.importance.GroupMagnitudeImportance(p=1 if importance == "l1" else 2)

    before = {name: (_params(b), _channels(b)) for name, b in blocks.items()}
    with _deep_graphs(), _without_parametrizations(blocks.values()):
        if scope == "global":
            together = _Together(blocks, inputs)
            _prune(tp, together, together.example, criterion, ratio, True, blocks, inputs)
        else:
            for name, block in blocks.items():
                _prune(tp, block, inputs[name], criterion, ratio, False, {name: block}, inputs)
    for name, block in blocks.items():
        block.zero_grad(set_to_none=True)
        sync_norm_features(block, *inputs[name])
        mark_pruned_architecture(block)  # whoever holds it saves its architecture
    return [
        BlockPruning(name, before[name][0], _params(b), before[name][1], _channels(b))
        for name, b in blocks.items()
    ]


def _prune(tp, model, example, criterion, ratio, global_pruning, blocks, inputs) -> None:
    protected = [
        layer for name, block in blocks.items() for layer in _protected(block, inputs[name])
    ]
    pruner = tp.pruner.MetaPruner(
        model,
        example,
        importance=criterion,
        pruning_ratio=ratio,
        global_pruning=global_pruning,
        ignored_layers=protected,
        customized_pruners=_customized_pruners(tp),
    )
    pruner.step()


def _customized_pruners(tp) -> dict[type, Any]:
    """Pruning functions for the project's own layers that torch-pruning does not know: the
    bias-free batch norm, whose ``running_std`` must lose the same channels as its ``weight``
    (left alone, the weight alone shrinks and the layer fails in eval mode)."""

    class BiasFreeNormPruner(tp.pruner.function.BasePruningFunc):
        TARGET_MODULES = BiasFreeBatchNorm2d

        def prune_out_channels(self, layer: nn.Module, idxs) -> nn.Module:
            keep = sorted(set(range(layer.num_features)) - set(idxs))
            layer.num_features = len(keep)
            layer.running_std = layer.running_std.data[keep]
            layer.weight = self._prune_parameter_and_grad(layer.weight, keep, 0)
            return layer

        prune_in_channels = prune_out_channels

        def get_out_channels(self, layer: nn.Module) -> int:
            return layer.num_features

        get_in_channels = get_out_channels

    return {BiasFreeBatchNorm2d: BiasFreeNormPruner()}


class _Together(nn.Module):
    """All blocks as one module, so that global pruning ranks their channels together."""

    def __init__(self, blocks: dict[str, nn.Module], inputs: dict[str, tuple]):
        super().__init__()
        self.names = list(blocks)
        self.blocks = nn.ModuleList(blocks.values())
        self.counts = [len(inputs[name]) for name in self.names]
        self.example = tuple(a for name in self.names for a in inputs[name])

    def forward(self, *args: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs, start = [], 0
        for block, count in zip(self.blocks, self.counts, strict=True):
            outputs.append(block(*args[start : start + count]))
            start += count
        return tuple(outputs)


def _protected(block: nn.Module, example: tuple) -> list[nn.Module]:
    """The convolutions whose output channels stay: the one that runs last (its outputs are the
    block's) and, in a super-resolution network, the upsampler from the convolution feeding the
    first pixel shuffle on (a shuffle reorders channels into pixels, which torch-pruning's
    channel mapping does not follow)."""
    shuffles = PIXEL_SHUFFLES  # 2D and N-d
    order: list[nn.Module] = []
    watched = [m for m in block.modules() if isinstance(m, (nn.modules.conv._ConvNd, *shuffles))]
    run_hooked(watched, lambda module, args, out: order.append(module), lambda: block(*example))
    convs = [m for m in order if not isinstance(m, shuffles)]
    first_shuffle = next((i for i, m in enumerate(order) if isinstance(m, shuffles)), None)
    if first_shuffle is None:
        return [convs[-1]]
    feeding = order[:first_shuffle]
    start = convs.index(feeding[-1]) if feeding else 0
    return list(dict.fromkeys(convs[start:]))


def sync_norm_features(module: nn.Module, *example: torch.Tensor) -> None:
    """Set ``num_features`` of normalisation layers without parameters (e.g. a U-Net's
    InstanceNorm) to the channels they now receive: pruning removes channels around them but
    has no weight of theirs to shrink, and a stale count makes PyTorch warn at every call."""
    norms = [
        m
        for m in module.modules()
        if isinstance(m, nn.modules.batchnorm._NormBase) and m.weight is None
    ]

    def record(layer, args):
        layer.num_features = int(args[0].shape[1])

    run_hooked(norms, record, lambda: module(*example), pre=True)


def run_hooked(modules, hook: Callable, run: Callable[[], Any], pre: bool = False) -> None:
    """Call ``run()`` without gradients with a hook on each of ``modules``, removed afterwards:
    ``hook(module, args)`` before each call with ``pre``, else ``hook(module, args, output)``
    after it."""
    if pre:
        handles = [m.register_forward_pre_hook(hook) for m in modules]
    else:
        handles = [m.register_forward_hook(hook) for m in modules]
    try:
        with torch.no_grad():
            run()
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def _deep_graphs() -> Iterator[None]:
    """torch-pruning's channel inference counts its recursion over a whole traversal; on a
    U-Net's skip connections it passes its limit of 500 and fails to map the concatenations.
    The limit is raised while pruning and restored after."""
    from torch_pruning.dependency import constants

    limit = constants.MAX_RECURSION_DEPTH
    constants.MAX_RECURSION_DEPTH = max(limit, 100_000)
    try:
        yield
    finally:
        constants.MAX_RECURSION_DEPTH = limit


@contextlib.contextmanager
def _without_parametrizations(blocks) -> Iterator[None]:
    """Prune the underlying weights of parametrized layers (a DEQ's spectral normalisation),
    which torch-pruning cannot slice, then parametrize them again: spectral norm with fresh
    power-iteration vectors of the new shapes, stateless parametrizations (a scale) as they
    were."""
    from torch.nn.utils import parametrize
    from torch.nn.utils.parametrizations import _SpectralNorm, spectral_norm

    saved = []
    for block in blocks:
        for module in block.modules():
            if parametrize.is_parametrized(module, "weight"):
                chain = list(module.parametrizations.weight)
                _own_class(module)
                parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)
                saved.append((module, chain))
    try:
        yield
    finally:
        for module, chain in saved:
            for step in chain:
                if isinstance(step, _SpectralNorm):
                    spectral_norm(
                        module, n_power_iterations=step.n_power_iterations, eps=step.eps,
                        dim=step.dim,
                    )  # fmt: skip
                else:
                    parametrize.register_parametrization(module, "weight", step)


def _own_class(module: nn.Module) -> None:
    """Give a parametrized module a private copy of its generated class. The deep copies of a
    parametrized module share that class, and removing a parametrization deletes its property
    from the class: without this, pruning a copy would break the original."""
    cls = type(module)
    attributes = {k: v for k, v in vars(cls).items() if k not in ("__dict__", "__weakref__")}
    module.__class__ = type(cls.__name__, cls.__bases__, attributes)


def _inside(root: nn.Module, name: str, kind: type) -> bool:
    parts = name.split(".")
    return any(isinstance(root.get_submodule(".".join(parts[:i])), kind) for i in range(len(parts)))


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _channels(module: nn.Module) -> int:
    return sum(m.out_channels for m in module.modules() if isinstance(m, nn.modules.conv._ConvNd))
