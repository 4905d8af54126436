"""Grid files: which config keys vary, and the runs (points) they expand into.

A grid file is a JSON object mapping dotted config keys to lists of values; the runs are the
cartesian product of the lists::

    {
      "data.init_args.train_size": [50, 100, 500],
      "model.init_args.recon.init_args.model.init_args.chans": [16, 32, 64]
    }

expands into 9 runs ``E001_t50_c16``, ``E002_t50_c32``, ... ``E009_t500_c64`` (the last key varies
fastest). Four reserved keys refine it:

- ``"zip"``: a list of groups; each group maps keys to lists of one length that vary *together*
  (one axis of the product), e.g. ``{"trainer.max_epochs": [10, 30], "x.lr": [1e-3, 3e-4]}``.
- ``"sample"``: ``{"n": 20, "seed": 0}`` runs n points drawn at random from the product. Points
  keep their number in the full product, so a run's name does not depend on which were drawn.
- ``"fixed"``: keys set to one value in every run (e.g. a cluster's ``trainer.max_epochs``).
- ``"labels"``: the short label of a key in run names. By default a key's label is the first
  letter of its last name (``train_size`` -> ``t``), its initials or the whole name when two keys
  would share it.

Everything here is pure: whether a key exists in the config and whether a value fits its type is
checked against the config by :mod:`deepinv_lab.grid.resolve`.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepinv_lab.errors import UserError

RESERVED = ("zip", "sample", "fixed", "labels")


class GridError(UserError):
    """A bad grid file or grid point: the message names the key (or the file)."""


@dataclass(frozen=True)
class Point:
    """One run of a grid: its number in the full product (1-based), its name and the values it
    gives to the grid's keys (``overrides``, dotted key -> value, the ``fixed`` keys included)."""

    number: int
    name: str
    overrides: dict[str, Any] = field(hash=False)


@dataclass
class GridSpec:
    """A parsed grid file.

    Attributes:
        axes: the product's axes in order; each is a list of ``{key: value}`` dicts (one key per
            dict for a plain axis, several for a ``zip`` group).
        keys: every varying key, in axis order.
        fixed: keys with one value in every run.
        labels: key -> its label in run names.
        sample: ``(n, seed)`` when only n random points run.
    """

    axes: list[list[dict[str, Any]]]
    keys: list[str]
    fixed: dict[str, Any]
    labels: dict[str, str]
    sample: tuple[int, int] | None = None

    @property
    def size(self) -> int:
        """Points in the full product."""
        return math.prod(len(axis) for axis in self.axes)

    def points(self) -> list[Point]:
        """The runs, numbered 1..size in product order (the ``sample`` when one is given)."""
        combos = list(itertools.product(*self.axes))
        width = max(3, len(str(len(combos))))
        numbers = range(1, len(combos) + 1)
        if self.sample is not None:
            n, seed = self.sample
            numbers = sorted(random.Random(seed).sample(numbers, n))
        points = []
        for number in numbers:
            values = {k: v for part in combos[number - 1] for k, v in part.items()}
            tags = [f"{self.labels[key]}{format_value(values[key])}" for key in self.keys]
            name = "_".join([f"E{number:0{width}d}", *tags])
            points.append(Point(number, name, {**values, **self.fixed}))
        return points

    def point(self, number: int) -> Point:
        """The point numbered ``number`` (as in its name ``E<number>``)."""
        points = self.points()
        for point in points:
            if point.number == number:
                return point
        available = [p.number for p in points]
        raise GridError(
            f"--index {number}: the grid has no point {number}; its points are "
            f"{number_ranges(available)}"
        )


def load_grid(path: str | Path) -> GridSpec:
    """Read and check a grid file (structure only): :class:`GridError` naming the key otherwise."""
    path = Path(path)
    if not path.is_file():
        raise GridError(f"grid file not found: {path}")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise GridError(f"grid file {path} is not valid JSON: {error}") from None
    try:
        return parse_grid(raw)
    except GridError as error:
        raise GridError(f"{path}: {error}") from None


def parse_grid(raw: Any) -> GridSpec:
    """Check a grid (the JSON object of a grid file) and build its :class:`GridSpec`."""
    if not isinstance(raw, dict):
        raise GridError(f"a grid is a JSON object of dotted key -> list, got {type(raw).__name__}")
    axes: list[list[dict[str, Any]]] = []
    keys: list[str] = []
    for key, values in raw.items():
        if key in RESERVED:
            continue
        _check_key(key)
        _check_values(key, values)
        axes.append([{key: value} for value in values])
        keys.append(key)
    groups = raw.get("zip", [])
    if isinstance(groups, dict):
        groups = [groups]
    if not isinstance(groups, list):
        raise GridError('"zip" must be a list of objects {key: [values], ...} of equal lengths')
    for group in groups:
        if not isinstance(group, dict) or not group:
            raise GridError(f'"zip": each group is a non-empty object key -> list, got {group!r}')
        lengths = {}
        for key, values in group.items():
            _check_key(key)
            _check_values(key, values)
            lengths[key] = len(values)
        if len(set(lengths.values())) > 1:
            raise GridError(f'"zip": the lists of one group must have one length, got {lengths}')
        combos = zip(*group.values(), strict=True)
        axes.append([dict(zip(group, combo, strict=True)) for combo in combos])
        keys.extend(group)
    duplicated = sorted({key for key in keys if keys.count(key) > 1})
    if duplicated:
        raise GridError(f"key {duplicated[0]!r} appears more than once in the grid")
    if not axes:
        raise GridError("the grid has no key to vary (a dotted config key mapped to a list)")
    fixed = raw.get("fixed", {})
    if not isinstance(fixed, dict):
        raise GridError('"fixed" must be an object of dotted key -> value')
    for key in fixed:
        _check_key(key)
        if key in keys:
            raise GridError(f'key {key!r} is both varied and in "fixed"')
    labels = _labels(keys, raw.get("labels", {}))
    spec = GridSpec(axes, keys, dict(fixed), labels)
    spec.sample = _sample(raw.get("sample"), spec.size)
    return spec


def format_value(value: Any) -> str:
    """A value as it appears in a run name: short, and only ``[A-Za-z0-9.+-]``."""
    if isinstance(value, bool) or value is None:
        text = str(value).lower()
    elif isinstance(value, float):
        text = f"{value:g}"
    elif isinstance(value, dict):
        if "class_path" in value:
            text = str(value["class_path"]).rsplit(".", 1)[-1]
        else:
            text = "-".join(format_value(v) for v in value.values())
    elif isinstance(value, list | tuple):
        text = "-".join(format_value(v) for v in value)
    elif isinstance(value, str) and re.fullmatch(r"[A-Za-z_][\w.]*\.[A-Za-z_]\w*", value):
        text = value.rsplit(".", 1)[-1]  # a class path: its class name
    else:
        text = str(value)
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", text).strip("-")[:24] or "x"


def _check_key(key: Any) -> None:
    if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", key):
        raise GridError(f"grid key {key!r} is not a dotted config key (e.g. data.init_args.x)")


def _check_values(key: str, values: Any) -> None:
    if not isinstance(values, list):
        raise GridError(
            f"grid key {key!r}: expected a list of values, got {json.dumps(values)} (a key "
            'with one value for every run goes in "fixed"; a list-valued key takes a list of '
            "lists)"
        )
    if not values:
        raise GridError(f"grid key {key!r}: the list of values is empty")
    seen = [json.dumps(v, sort_keys=True) for v in values]
    repeated = sorted({text for text in seen if seen.count(text) > 1})
    if repeated:
        raise GridError(f"grid key {key!r}: value {repeated[0]} is listed twice")


def _labels(keys: list[str], given: Any) -> dict[str, str]:
    """Short labels: given ones, else the first letter of the key's last name, its initials, the
    name, the last two names, whichever is first unique among the grid's keys."""
    if not isinstance(given, dict):
        raise GridError('"labels" must be an object of dotted key -> short label')
    for key, label in given.items():
        if key not in keys:
            raise GridError(f'"labels": {key!r} is not a varied key of the grid')
        if not isinstance(label, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", label):
            raise GridError(f'"labels": the label of {key!r} must be letters/digits, got {label!r}')

    def candidates(key: str) -> list[str]:
        names = [n for n in key.split(".") if n != "init_args"]
        if names[-1] == "class_path" and len(names) > 1:
            names = names[:-1]
        last = names[-1]
        words = [w for w in last.split("_") if w]
        options = [last[0], "".join(w[0] for w in words), last.replace("_", "")]
        if len(names) > 1:
            options.append((names[-2] + last).replace("_", ""))
        return options

    options = {key: candidates(key) for key in keys}
    depth = {key: 0 for key in keys if key not in given}
    while True:
        labels = {k: given[k] if k in given else options[k][depth[k]] for k in keys}
        taken = list(labels.values())
        clashing = [k for k in keys if taken.count(labels[k]) > 1]
        if not clashing:
            return labels
        movable = [k for k in clashing if k in depth and depth[k] + 1 < len(options[k])]
        if not movable:
            raise GridError(
                f'keys {clashing} share the label {labels[clashing[0]]!r}: set "labels"'
            )
        for key in movable:
            depth[key] += 1


def _sample(raw: Any, size: int) -> tuple[int, int] | None:
    if raw is None:
        return None
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = {"n": raw}
    if not isinstance(raw, dict) or set(raw) - {"n", "seed"}:
        raise GridError('"sample" must be {"n": <points>, "seed": <int>}')
    n, seed = raw.get("n"), raw.get("seed", 0)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= size:
        raise GridError(f'"sample": n must be an integer from 1 to {size} (the product), got {n!r}')
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise GridError(f'"sample": seed must be an integer, got {seed!r}')
    return n, seed


def number_ranges(numbers: list[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1-3,7"`` (also SLURM's ``--array`` syntax)."""
    parts, start = [], None
    for i, number in enumerate(numbers):
        if start is None:
            start = number
        if i + 1 == len(numbers) or numbers[i + 1] != number + 1:
            parts.append(str(start) if start == number else f"{start}-{number}")
            start = None
    return ",".join(parts)
