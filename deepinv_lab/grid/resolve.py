"""Each grid point's full config, resolved and checked by the parser ``deepinv-lab fit`` uses.

A point's config is the base config with the point's values given as command-line overrides
(``--data.init_args.train_size=50``), parsed and dumped with every default filled in: the saved
``config.json`` of a run is exactly what ran. Keys that are not in the config and values that do
not fit their key's type fail here, before any run starts, with the grid key named.
"""

from __future__ import annotations

import difflib
import json
from argparse import ArgumentError
from pathlib import Path
from typing import Any

from deepinv_lab.config_errors import describe_parser_error
from deepinv_lab.grid.spec import GridError, GridSpec, Point

#: keys the grid sets itself for every run
MANAGED_KEYS = ("trainer.logger",)


class ConfigResolver:
    """Resolves configs from ``base_config`` with the parser of the ``deepinv-lab`` command.

    Args:
        parser: the LightningCLI parser (``deepinv_lab.cli.config_parser()``).
        base_config: the JSON config every run starts from.
        subcommand: the subcommand whose config is resolved (``fit``).
    """

    def __init__(self, parser: Any, base_config: str | Path, subcommand: str = "fit"):
        self.parser = parser
        self.base_config = Path(base_config)
        self.subcommand = subcommand
        if not self.base_config.is_file():
            raise GridError(f"config file not found: {self.base_config}")
        try:
            self.base = self.resolve({})
        except GridError as error:
            raise GridError(f"{self.base_config}: {error}") from None

    def resolve(self, overrides: dict[str, Any]) -> dict:
        """The full config of the base with ``overrides`` (dotted key -> value) applied."""
        args = [self.subcommand, "--config", str(self.base_config)]
        args += [f"--{key}={as_argument(value)}" for key, value in overrides.items()]
        try:
            namespace = self.parser.parse_args(args)
        except ArgumentError as error:
            raise GridError(describe_parser_error(error, self.parser, args)) from None
        dumped = self.parser.dump(namespace, format="json", skip_none=False)
        return json.loads(dumped)[self.subcommand]

    def check_keys(self, spec: GridSpec) -> None:
        """Every grid key names an entry of the config (or of a class a grid key selects)."""
        selected = {k.rsplit(".", 1)[0] for k in spec.keys if k.endswith(".class_path")}
        for key in [*spec.keys, *spec.fixed]:
            if key in MANAGED_KEYS or any(key.startswith(m + ".") for m in MANAGED_KEYS):
                raise GridError(
                    f"grid key {key!r}: the grid sets the logger of every run (TensorBoard, "
                    "one directory per run under --out); remove the key"
                )
            if has_key(self.base, key):
                continue
            if any(key.startswith(prefix + ".init_args.") for prefix in selected):
                continue  # an argument of a class another grid key selects: checked per point
            hint = _hint(key, self.base)
            raise GridError(f"grid key {key!r} is not in the config {self.base_config}{hint}")

    def resolve_point(self, point: Point, managed: dict[str, Any]) -> dict:
        """The full config of ``point`` with the grid's ``managed`` keys (the logger) set.

        A value that does not fit is traced back to its grid key: each of the point's values
        is tried alone on the base config.
        """
        try:
            config = self.resolve({**point.overrides, **managed})
        except GridError as error:
            for key, value in point.overrides.items():
                try:
                    self.resolve({key: value})
                except GridError as single:
                    raise GridError(
                        f"grid key {key!r}: value {json.dumps(value)} does not fit the config "
                        f"(run {point.name}): {single}"
                    ) from None
            raise GridError(f"run {point.name} ({_describe(point)}): {error}") from None
        for key in point.overrides:
            if not has_key(config, key):
                raise GridError(f"grid key {key!r} is not in the config of run {point.name}")
        _check_shared_paths(config)
        return config


def as_argument(value: Any) -> str:
    """A value as jsonargparse reads it from the command line: strings as they are, the rest as
    JSON (which jsonargparse parses)."""
    return value if isinstance(value, str) else json.dumps(value)


def has_key(config: dict, key: str) -> bool:
    """Whether the dotted ``key`` names an entry of the nested ``config``."""
    node: Any = config
    for name in key.split("."):
        if not isinstance(node, dict) or name not in node:
            return False
        node = node[name]
    return True


def all_keys(config: Any, prefix: str = "") -> list[str]:
    """Every dotted key of a nested config."""
    if not isinstance(config, dict):
        return [prefix] if prefix else []
    keys = [prefix] if prefix else []
    for name, value in config.items():
        keys += all_keys(value, f"{prefix}.{name}" if prefix else name)
    return keys


def _hint(key: str, config: dict) -> str:
    close = difflib.get_close_matches(key, all_keys(config), n=1, cutoff=0.8)
    return f"; did you mean {close[0]!r}?" if close else ""


def _describe(point: Point) -> str:
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in point.overrides.items())


def _check_shared_paths(config: dict) -> None:
    """Runs must not write into one place: a ModelCheckpoint with a fixed ``dirpath`` would."""
    callbacks = config.get("trainer", {}).get("callbacks") or []
    for index, callback in enumerate(callbacks if isinstance(callbacks, list) else [callbacks]):
        init_args = callback.get("init_args") or {} if isinstance(callback, dict) else {}
        if "ModelCheckpoint" in str(callback.get("class_path", "")) and init_args.get("dirpath"):
            raise GridError(
                f"trainer.callbacks[{index}].init_args.dirpath is {init_args['dirpath']!r}: "
                "every run of the grid would write its checkpoints there; remove it (each run "
                "checkpoints into its own directory)"
            )
