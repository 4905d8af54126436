"""What ``deepinv-lab reconstruct`` takes from a checkpoint: the Recon (built from the config
stored in it, with its weights), what kind of data it reconstructs, and the few settings of
its training data that inference must repeat (coil maps, the super-resolution factor, colour,
patch inference)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from deepinv_lab.checkpoints.config import stored_model_config, stored_run_config
from deepinv_lab.checkpoints.reading import read_checkpoint
from deepinv_lab.data.physics.draws import EspiritEstimate
from deepinv_lab.errors import UserError
from deepinv_lab.recons.base import Recon
from deepinv_lab.recons.trained import recon_from_checkpoint
from deepinv_lab.systems.base import Identity, System
from deepinv_lab.systems.downsampling import Downsampling
from deepinv_lab.systems.mri import MultiCoilFourier
from deepinv_lab.training.module import PatchInference

#: the kinds of data a Recon may reconstruct
RECON_KINDS = ("kspace", "image")
#: data modules whose batches give the Recon the true coil maps (MultiCoilMRI)
MAPS_DATA_MODULES = ("SimulatedBrainMRIDataModule",)
MAPS_CHOICES = ("auto", "espirit", "none")


@dataclasses.dataclass
class ReconSetup:
    """A checkpoint's Recon and its inference settings.

    Attributes:
        recon: the Recon, in eval mode, weights loaded.
        checkpoint: the file.
        kinds: what it reconstructs: ``"kspace"`` (Cartesian multicoil k-space with a mask)
            and/or ``"image"`` (real images or volumes).
        maps: the coil-map estimate its k-space batches need (None: no maps, e.g. VarNet).
        image_system: the System of its image data: the ``Downsampling`` of its training
            config (super-resolution), else the identity (denoising).
        grayscale: its training images were grayscale (1 channel), else colour.
        patch_inference: the checkpoint's ``model.init_args.patch_inference``, if any.
    """

    recon: Recon
    checkpoint: Path
    kinds: tuple[str, ...]
    maps: EspiritEstimate | None
    image_system: System
    grayscale: bool
    patch_inference: PatchInference | None

    @property
    def name(self) -> str:
        return type(self.recon).__name__


def _find_key(config: Any, key: str) -> Any:
    """The value of the first ``key`` found in a nested config (depth first), else None."""
    if isinstance(config, dict):
        if config.get(key) is not None:
            return config[key]
        for value in config.values():
            found = _find_key(value, key)
            if found is not None:
                return found
    elif isinstance(config, list):
        for value in config:
            found = _find_key(value, key)
            if found is not None:
                return found
    return None


def recon_kinds(recon: Recon, image_system: System) -> tuple[str, ...]:
    """The kinds of data ``recon`` accepts, asked of its own ``check_system`` on a tiny example
    of each: multicoil k-space with a column mask, and a real image of ``image_system``."""
    examples = {
        "kspace": (
            MultiCoilFourier(torch.ones(1, 1, 1, 8)),
            torch.zeros(1, 2, 8, 8, dtype=torch.complex64),
        ),
        "image": (image_system, torch.zeros(1, 1, 8, 8)),
    }
    kinds = []
    for kind, (system, y) in examples.items():
        try:
            recon.check_system(system, y)
        except UserError:
            continue
        except Exception:  # noqa: BLE001 - a check needing more of the System: not this kind
            continue
        kinds.append(kind)
    return tuple(kinds)


def maps_estimate(data: dict[str, Any] | None, choice: str) -> EspiritEstimate | None:
    """The coil-map estimate for ``--maps choice``: ``"none"``; ``"espirit"`` (the training
    data's ESPIRiT parameters when it had some, else the defaults); ``"auto"``: ESPIRiT when
    the training data gave the Recon coil maps (an ``estimate_maps`` in its config, or the
    simulated brain's true maps), else none."""
    if choice not in MAPS_CHOICES:
        raise UserError(f"--maps: expected one of {MAPS_CHOICES}, got {choice!r}")
    if choice == "none":
        return None
    stored = _find_key(data, "estimate_maps")
    if isinstance(stored, dict):
        return EspiritEstimate(**stored.get("init_args", {}))
    if choice == "espirit":
        return EspiritEstimate()
    class_path = str((data or {}).get("class_path", ""))
    return EspiritEstimate() if class_path.endswith(MAPS_DATA_MODULES) else None


def _downsampling_config(config: Any) -> dict[str, Any] | None:
    """The ``init_args`` of the first ``Downsampling`` System in a nested config, else None."""
    if isinstance(config, dict):
        if str(config.get("class_path", "")).endswith(".Downsampling"):
            return dict(config.get("init_args") or {})
        values = config.values()
    elif isinstance(config, list):
        values = config
    else:
        return None
    for value in values:
        found = _downsampling_config(value)
        if found is not None:
            return found
    return None


def image_system_of(data: dict[str, Any] | None, recon_scale: int | None = None) -> System:
    """The System of image data like the training data ``data`` (a config): its
    ``Downsampling`` (super-resolution data modules name its ``scale`` and ``filter``), else
    the Recon's own ``scale``, else the identity."""
    options = _downsampling_config(data)
    init_args = (data or {}).get("init_args") or {}
    if options is None and isinstance(init_args.get("scale"), int):  # SR data modules
        options = {"factor": init_args["scale"], "filter": init_args.get("filter", "bicubic")}
    if options is None and recon_scale is not None:
        options = {"factor": int(recon_scale)}
    return Identity() if options is None else Downsampling(**options)


def load_setup(checkpoint: str | Path, maps: str = "auto") -> ReconSetup:
    """The :class:`ReconSetup` of a ``deepinv-lab fit`` (or ``prune``) checkpoint; a UserError
    names the file when it is not one."""
    path = Path(checkpoint)
    recon = recon_from_checkpoint(path, "--ckpt_path")
    recon.eval()
    stored = read_checkpoint(path, "--ckpt_path")
    run = stored_run_config(stored) or {}
    data = run.get("data") if isinstance(run.get("data"), dict) else None
    model = stored_model_config(stored) or {}
    options = (model.get("init_args") or {}).get("patch_inference")
    patch_inference = PatchInference(**options) if isinstance(options, dict) else None
    image_system = image_system_of(data, getattr(recon, "scale", None))
    grayscale = _find_key(data, "grayscale")
    return ReconSetup(
        recon=recon,
        checkpoint=path,
        kinds=recon_kinds(recon, image_system),
        maps=maps_estimate(data, maps),
        image_system=image_system,
        grayscale=True if grayscale is None else bool(grayscale),
        patch_inference=patch_inference,
    )
