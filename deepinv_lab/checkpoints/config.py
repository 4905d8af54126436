"""The config a checkpoint was trained with, and how a given config differs from it.

``fit`` stores its whole resolved config (``trainer``, ``model``, ``data``, ``seed_everything``)
in every checkpoint under :data:`RUN_CONFIG_KEY`, so that ``--ckpt_path`` alone rebuilds the
run. Older checkpoints (and those of other tools) have only Lightning's ``hyper_parameters``
of the model, from which :func:`stored_model_config` rebuilds the ``model`` section.
"""

from __future__ import annotations

from typing import Any

#: the checkpoint key of the run's config
RUN_CONFIG_KEY = "deepinv_lab_config"
#: the sections of a run's config that a checkpoint keeps (ckpt_path and the like are the
#: command's, not the run's)
RUN_SECTIONS = ("seed_everything", "trainer", "model", "data", "checkpoint_every_n_steps")
#: where the Recon's class is in a ReconModule's config
RECON_CLASS_KEY = "model.init_args.recon.class_path"
#: DataModules that moved, by the class path older checkpoints stored: same arguments, new home
MOVED_DATA_CLASSES = {
    "deepinv_lab.data.datamodule.SimulatedBrainMRIDataModule": (
        "deepinv_lab.data.presets.SimulatedBrainMRIDataModule"
    ),
    **{
        f"deepinv_lab.data.image_datamodules.{name}": f"deepinv_lab.data.presets.{name}"
        for name in (
            "BuiltinDenoisingDataModule",
            "BuiltinSuperResolutionDataModule",
            "BuiltinMicroCTDataModule",
        )
    },
}


def run_config(config: dict[str, Any]) -> dict[str, Any]:
    """The part of a command's resolved ``config`` that describes the run (what a checkpoint
    keeps)."""
    return {key: config[key] for key in RUN_SECTIONS if key in config}


def stored_run_config(checkpoint: dict[str, Any]) -> dict[str, Any] | None:
    """The run config stored in ``checkpoint`` by ``fit``, or None (an older checkpoint).
    A DataModule that has moved since (:data:`MOVED_DATA_CLASSES`) is named by its new path;
    the checkpoint itself is not changed."""
    stored = checkpoint.get(RUN_CONFIG_KEY)
    if not isinstance(stored, dict):
        return None
    data = stored.get("data")
    if isinstance(data, dict) and data.get("class_path") in MOVED_DATA_CLASSES:
        data = {**data, "class_path": MOVED_DATA_CLASSES[data["class_path"]]}
        stored = {**stored, "data": data}
    return stored


def stored_model_config(checkpoint: dict[str, Any]) -> dict[str, Any] | None:
    """The ``model`` section the checkpoint was trained with (``class_path``/``init_args``):
    from the stored run config, else from Lightning's ``hyper_parameters`` as saved by a
    module built from a config (with ``_class_path``); None when neither says."""
    stored = stored_run_config(checkpoint)
    if stored is not None and isinstance(stored.get("model"), dict):
        return stored["model"]
    hyper = checkpoint.get("hyper_parameters")
    if not isinstance(hyper, dict) or "_class_path" not in hyper:
        return None
    init_args = {k: v for k, v in hyper.items() if not k.startswith("_")}
    return {"class_path": hyper["_class_path"], "init_args": init_args}


def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists and scalars are leaves."""
    if not isinstance(config, dict):
        return {prefix: config}
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            flat.update(flatten(value, name))
        else:
            flat[name] = value
    return flat


def config_differences(
    given: dict[str, Any], stored: dict[str, Any], prefix: str = "model"
) -> list[tuple[str, Any, Any]]:
    """``(key, given value, stored value)`` for every dotted key (under ``prefix``) whose value
    differs; a key missing on one side has the value None there. Keys whose subtree is a
    different ``class_path`` are reported once, at the class."""
    flat_given, flat_stored = flatten(given, prefix), flatten(stored, prefix)
    classes = [
        key.removesuffix(".class_path")
        for key in flat_given
        if key.endswith(".class_path") and flat_given[key] != flat_stored.get(key)
    ]
    differences = []
    for key in sorted(set(flat_given) | set(flat_stored)):
        mine, theirs = flat_given.get(key), flat_stored.get(key)
        if mine == theirs or _same_number(mine, theirs):
            continue
        if any(key.startswith(f"{cls}.") and not key.endswith(".class_path") for cls in classes):
            continue
        differences.append((key, mine, theirs))
    return differences


def _same_number(a: Any, b: Any) -> bool:
    """1 and 1.0 are the same value (a config may spell a float as an int)."""
    numbers = (int, float)
    return (
        isinstance(a, numbers)
        and isinstance(b, numbers)
        and not isinstance(a, bool)
        and not isinstance(b, bool)
        and float(a) == float(b)
    )


def describe_differences(differences: list[tuple[str, Any, Any]], limit: int = 6) -> str:
    """``key: a (config) vs b (checkpoint); ...`` for at most ``limit`` differences."""
    shown = [
        f"{key}: {mine!r} (config) vs {theirs!r} (checkpoint)" for key, mine, theirs in differences
    ]
    more = f"; and {len(shown) - limit} more" if len(shown) > limit else ""
    return "; ".join(shown[:limit]) + more
