"""The options of ``deepinv-lab prune``: the ``prune`` group of its parser.

``deepinv-lab prune`` parses with the parser of ``fit`` plus this group
(:func:`add_prune_arguments`), so ``--prune.<key>`` values and a config's ``prune`` section are
typed, checked and reported like every other key (an unknown key gets a suggestion, a wrong
type names the key). :class:`PruneOptions` then checks what a type cannot say.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from deepinv_lab.pruning.structured import IMPORTANCES, SCOPES, PruningError
from deepinv_lab.training.objectives import OBJECTIVES

#: the fine-tuning strategies: the training objectives, by name
STRATEGIES = tuple(OBJECTIVES)


@dataclass
class PruneOptions:
    """What ``deepinv-lab prune`` does (every field is a ``prune.<name>`` key).

    Attributes:
        ratio: the fraction of the prior's channels removed, in (0, 1).
        ratios: several ratios: a sweep, one run per ratio, with a speed-vs-quality plot; a
            list or a comma-separated string (``0.1,0.3,0.5``).
        importance: how channels are ranked: ``l1``, ``l2`` (weight norms) or ``taylor``.
        scope: ``per_block`` (each network loses ``ratio`` of its channels) or ``global``.
        include_sensitivity: also prune a VarNet's coil-sensitivity network.
        out: the output directory.
        finetune: the fine-tuning strategies and their weights: ``{"supervised": 1.0}``, a list
            of names or a comma-separated string of names (each weighted 1); ``None`` or
            ``"none"``: no fine-tuning. After construction, always a dict.
        finetune_steps: optimizer steps of fine-tuning.
        holdout: the fraction of the measurements held out by the ``ssdu`` objective (SSDU's
            Lambda).
        repeats, warmup: the timed and untimed reconstructions of each latency measurement.
        val_batches: validate on this many batches only (``None``: the whole validation set).
    """

    ratio: float | None = None
    ratios: list[float] | str | None = None
    importance: Literal[IMPORTANCES] = "l1"
    scope: Literal[SCOPES] = "per_block"
    include_sensitivity: bool = False
    out: str = "pruned"
    finetune: dict[str, float] | list[str] | str | None = None
    finetune_steps: int = 200
    holdout: float = 0.4
    repeats: int = 10
    warmup: int = 2
    val_batches: int | None = None

    def __post_init__(self) -> None:
        self.ratios = _ratios(self.ratios)
        self.finetune = _strategies(self.finetune)
        self.check()

    @property
    def sweep(self) -> list[float]:
        """The ratios to run, in increasing order."""
        return sorted(self.ratios) if self.ratios else [self.ratio]

    def check(self) -> None:
        """What the types do not say: a :class:`PruningError` names the key."""
        if self.ratio is None and not self.ratios:
            raise PruningError("give prune.ratio (e.g. --prune.ratio 0.5) or prune.ratios")
        if self.ratio is not None and self.ratios:
            raise PruningError("give prune.ratio or prune.ratios, not both")
        for ratio in [self.ratio] if self.ratio is not None else self.ratios:
            if not 0 < ratio < 1:
                raise PruningError(f"prune.ratio must be in (0, 1), got {ratio}")
        if self.ratios and len(set(self.ratios)) != len(self.ratios):
            raise PruningError(f"prune.ratios has a repeated value: {self.ratios}")
        for key, allowed in (("importance", IMPORTANCES), ("scope", SCOPES)):
            if getattr(self, key) not in allowed:
                raise PruningError(
                    f"prune.{key} must be one of {', '.join(allowed)}, got {getattr(self, key)!r}"
                )
        for name, weight in self.finetune.items():
            if name not in STRATEGIES:
                raise PruningError(
                    f"prune.finetune: unknown strategy {name!r}; choose from "
                    f"{', '.join(STRATEGIES)}"
                )
            if weight < 0:
                raise PruningError(f"prune.finetune.{name}: a weight must be >= 0, got {weight}")
        if self.finetune and not any(self.finetune.values()):
            raise PruningError("prune.finetune: every weight is 0")
        for key in ("finetune_steps", "repeats"):
            if getattr(self, key) < 1:
                raise PruningError(f"prune.{key} must be >= 1, got {getattr(self, key)}")
        if self.warmup < 0:
            raise PruningError(f"prune.warmup must be >= 0, got {self.warmup}")
        if not 0 < self.holdout < 1:
            raise PruningError(f"prune.holdout must be in (0, 1), got {self.holdout}")
        if self.val_batches is not None and self.val_batches < 1:
            raise PruningError(f"prune.val_batches must be >= 1, got {self.val_batches}")


def add_prune_arguments(parser) -> None:
    """Add the ``prune`` group (:class:`PruneOptions`) to a jsonargparse parser."""
    parser.add_class_arguments(PruneOptions, "prune", help="deepinv-lab prune's options")


def _ratios(value: list[float] | str | None) -> list[float] | None:
    """A list of ratios from a list or from ``"0.1,0.3"``."""
    if value is None or isinstance(value, list):
        return value
    try:
        return [float(part) for part in str(value).split(",") if part.strip()] or None
    except ValueError:
        raise PruningError(
            f"prune.ratios: {value!r} is not a list of numbers (e.g. 0.1,0.3 or [0.1, 0.3])"
        ) from None


def _strategies(value: Any) -> dict[str, float]:
    """``{"supervised": 1, ...}``, a list of names, or a comma-separated string of names (each
    weighted 1); ``"none"`` or an empty value for no fine-tuning."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith(("{", "[")):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as error:
                raise PruningError(f"prune.finetune: {text!r} is not valid JSON: {error}") from None
        elif text.lower() in ("", "none"):
            return {}
        else:
            value = [name.strip() for name in text.split(",")]
    if value is None:
        return {}
    if isinstance(value, list | tuple):
        return {str(name): 1.0 for name in value}
    if isinstance(value, dict):
        return {str(name): float(weight) for name, weight in value.items()}
    raise PruningError(
        f"prune.finetune: {value!r} is not a dict of strategy weights or a list of names"
    )
