"""The options of ``deepinv-lab prune``: a config's ``prune`` section and ``--prune.<key>``
command-line values, checked before anything runs."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field, fields
from typing import Any

from deepinv_lab.pruning.structured import IMPORTANCES, SCOPES, PruningError

STRATEGIES = ("supervised", "measurement", "distillation")


@dataclass
class PruneOptions:
    """What ``deepinv-lab prune`` does (every field is a ``prune.<name>`` key).

    Attributes:
        ratio: the fraction of the prior's channels removed, in (0, 1).
        ratios: several ratios: a sweep, one run per ratio, with a speed-vs-quality plot.
        importance: how channels are ranked: ``l1``, ``l2`` (weight norms) or ``taylor``.
        scope: ``per_block`` (each network loses ``ratio`` of its channels) or ``global``.
        include_sensitivity: also prune a VarNet's coil-sensitivity network.
        out: the output directory.
        finetune: the fine-tuning strategies and their weights, e.g.
            ``{"supervised": 1.0}``; empty: no fine-tuning.
        finetune_steps: optimizer steps of fine-tuning.
        holdout: the fraction of the measurements held out for the measurement-consistency
            loss (SSDU's Lambda).
        repeats, warmup: the timed and untimed reconstructions of each latency measurement.
        val_batches: validate on this many batches only (``None``: the whole validation set).
    """

    ratio: float | None = None
    ratios: list[float] | None = None
    importance: str = "l1"
    scope: str = "per_block"
    include_sensitivity: bool = False
    out: str = "pruned"
    finetune: dict[str, float] = field(default_factory=dict)
    finetune_steps: int = 200
    holdout: float = 0.4
    repeats: int = 10
    warmup: int = 2
    val_batches: int | None = None

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> PruneOptions:
        """Options from ``prune.<key>`` values (strings from the command line are parsed);
        a PruningError names a key that does not exist or a value that does not fit."""
        names = [f.name for f in fields(cls)]
        options = cls()
        for key, value in values.items():
            if key not in names:
                close = difflib.get_close_matches(key, names, n=1)
                hint = f" (did you mean prune.{close[0]}?)" if close else ""
                raise PruningError(
                    f"unknown key prune.{key}{hint}; the keys are: {', '.join(names)}"
                )
            setattr(options, key, _convert(key, value))
        options.check()
        return options

    @property
    def sweep(self) -> list[float]:
        """The ratios to run, in increasing order."""
        return sorted(self.ratios) if self.ratios else [self.ratio]

    def check(self) -> None:
        if self.ratio is None and not self.ratios:
            raise PruningError("give prune.ratio (e.g. --prune.ratio 0.5) or prune.ratios")
        if self.ratio is not None and self.ratios:
            raise PruningError("give prune.ratio or prune.ratios, not both")
        for ratio in [self.ratio] if self.ratio is not None else self.ratios:
            if not 0 < ratio < 1:
                raise PruningError(f"prune.ratio must be in (0, 1), got {ratio}")
        if self.ratios and len(set(self.ratios)) != len(self.ratios):
            raise PruningError(f"prune.ratios has a repeated value: {self.ratios}")
        if self.importance not in IMPORTANCES:
            raise PruningError(
                f"prune.importance must be one of {', '.join(IMPORTANCES)}, got {self.importance!r}"
            )
        if self.scope not in SCOPES:
            raise PruningError(
                f"prune.scope must be one of {', '.join(SCOPES)}, got {self.scope!r}"
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


def _convert(key: str, value: Any) -> Any:
    """A ``prune.<key>`` value of the right type; command-line strings are parsed."""
    try:
        if key in ("ratio", "holdout"):
            return None if value is None and key == "ratio" else _number(value, float)
        if key in ("finetune_steps", "repeats", "warmup"):
            return _number(value, int)
        if key == "val_batches":
            return None if value in (None, "null", "None") else _number(value, int)
        if key == "ratios":
            if isinstance(value, str):
                text = value.strip()
                value = json.loads(text) if text.startswith("[") else text.split(",")
            if not isinstance(value, list) or not value:
                raise TypeError("a non-empty list of numbers")
            return [_number(v, float) for v in value]
        if key == "include_sensitivity":
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            if not isinstance(value, bool):
                raise TypeError("true or false")
            return value
        if key == "finetune":
            return _strategies(value)
        if not isinstance(value, str):
            raise TypeError("a string")
        return value
    except (TypeError, ValueError) as error:
        raise PruningError(f"prune.{key}: {value!r} is not {_expected(error)}") from None


def _expected(error: Exception) -> str:
    message = str(error)
    return message if message.startswith(("a ", "an ", "true")) else f"valid ({message})"


def _number(value: Any, kind: type) -> int | float:
    if isinstance(value, bool):
        raise TypeError("a number")
    if isinstance(value, str):
        try:
            number = float(value.strip()) if kind is float else int(value.strip())
        except ValueError:
            raise TypeError("an integer" if kind is int else "a number") from None
    elif isinstance(value, int | float):
        number = kind(value)
        if kind is int and number != value:
            raise TypeError("an integer")
    else:
        raise TypeError("an integer" if kind is int else "a number")
    return number


def _strategies(value: Any) -> dict[str, float]:
    """``{"supervised": 1, ...}``, a list of names, or a comma-separated string of names (each
    weighted 1); ``"none"`` or an empty value for no fine-tuning."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith(("{", "[")):
            value = json.loads(text)
        elif text.lower() in ("", "none"):
            return {}
        else:
            value = [name.strip() for name in text.split(",")]
    if isinstance(value, list | tuple):
        return {str(name): 1.0 for name in value}
    if isinstance(value, dict):
        return {str(name): float(_number(weight, float)) for name, weight in value.items()}
    if value is None:
        return {}
    raise TypeError("a dict of strategy weights or a list of strategy names")
