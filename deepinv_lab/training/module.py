"""ReconModule: the LightningModule that trains, validates and tests any Recon."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import pytorch_lightning as pl
import torch
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn

from deepinv_lab.batch import Batch, check_batch, require_target
from deepinv_lab.checkpoints import (
    STRUCTURE_KEY,
    apply_structure,
    has_pruned_architecture,
    load_recon_weights,
    structure_of,
)
from deepinv_lab.checkpoints.config import RUN_CONFIG_KEY
from deepinv_lab.errors import UserError
from deepinv_lab.functional import center_crop
from deepinv_lab.functional.patches import BLENDINGS, check_patching
from deepinv_lab.recons.base import Recon
from deepinv_lab.recons.patches import patch_recon
from deepinv_lab.training.baselines import METRIC_NAMES, baselines_by_name
from deepinv_lab.training.losses import make_loss
from deepinv_lab.training.metrics import VolumeMetrics
from deepinv_lab.training.objectives import Objective, check_objectives
from deepinv_lab.training.schedulers import StepShorthand, make_scheduler


def built_from_config() -> bool:
    """True while LightningCLI instantiates the module (it then provides the hyperparameters)."""
    try:
        from pytorch_lightning.core.mixins.hparams_mixin import _given_hyperparameters
    except ImportError:  # a Lightning without config-given hyperparameters
        return False
    return _given_hyperparameters.get() is not None


#: the config key of :class:`PatchInference`, which its errors name
PATCH_INFERENCE_KEY = "model.patch_inference"


@dataclass
class PatchInference:
    """Validation, test and predict by overlapping patches
    (:func:`~deepinv_lab.recons.patches.patch_recon`) for measurements too large to reconstruct
    at once: whole volumes, large micro-CT slices. Config key ``model.init_args.patch_inference``.

    Args:
        patch_size: the patch's size in measurement pixels, one int or one per spatial dim.
        overlap: the least overlap of neighbouring patches, smaller than ``patch_size``.
        blending: ``"gaussian"`` (nnU-Net's weights, sigma = patch / 8) or ``"linear"`` (ramps
            over the overlap).
        margin: measurement pixels dropped at the patch edges inside the image, at most
            ``overlap / 2``; a convolutional network of receptive radius ``<= margin`` then
            gives exactly its whole-image result.
        max_elements: the memory budget: measurements with more spatial elements per sample
            (``H W``, or ``D H W``) are reconstructed by patches, smaller ones whole; 0 patches
            every batch.
    """

    patch_size: int | list[int]
    overlap: int | list[int] = 0
    blending: str = "gaussian"
    margin: int | list[int] = 0
    max_elements: int = 0

    def __post_init__(self):
        key = PATCH_INFERENCE_KEY
        for name in ("patch_size", "overlap", "margin"):
            value = getattr(self, name)
            values = list(value) if isinstance(value, (list, tuple)) else [value]
            if not values or any(isinstance(v, bool) or not isinstance(v, int) for v in values):
                raise UserError(f"{key}.{name}: expected an int or a list of ints, got {value!r}")
            lowest = 1 if name == "patch_size" else 0
            if min(values) < lowest:
                raise UserError(f"{key}.{name}: expected values >= {lowest}, got {value!r}")
            setattr(self, name, value if isinstance(value, int) else tuple(values))
        if self.blending not in BLENDINGS:
            raise UserError(f"{key}.blending: expected one of {BLENDINGS}, got {self.blending!r}")
        max_elements = self.max_elements
        if isinstance(max_elements, bool) or not isinstance(max_elements, int) or max_elements < 0:
            raise UserError(f"{key}.max_elements: expected an integer >= 0, got {max_elements!r}")

    def check(self, y: torch.Tensor) -> None:
        """Raise a :class:`~deepinv_lab.errors.UserError` naming the key unless these patches
        tile measurements ``y`` ``(B, C, *spatial)``."""
        shape = y.shape[2:]
        check_patching(
            shape, self.patch_size, self.overlap, self.margin, self.blending, PATCH_INFERENCE_KEY
        )

    def applies_to(self, y: torch.Tensor) -> bool:
        """Whether measurements ``y`` ``(B, C, *spatial)`` exceed the budget."""
        return math.prod(y.shape[2:]) > self.max_elements

    def reconstruct(self, recon: nn.Module, y: torch.Tensor, system: nn.Module) -> torch.Tensor:
        """``recon(y, system)``, by these patches when ``y`` exceeds the budget, else whole."""
        if not self.applies_to(y):
            return recon(y, system)
        self.check(y)
        return patch_recon(
            recon, y, system, self.patch_size, self.overlap, self.blending, self.margin
        )


class ReconModule(pl.LightningModule):
    """Trains a :class:`~deepinv_lab.recons.base.Recon` on batches that carry their System.

    Batches follow the contract of :class:`deepinv_lab.batch.Batch`: ``y`` (the measurements),
    ``system`` (the System ``A`` that produced them, carrying the acquisition's side information
    such as the ACS width), ``target`` ``(B, C, H, W)`` and ``max_value`` ``(B,)`` (the SSIM/PSNR
    data range), optionally volume ids. :meth:`reconstruct` checks a batch and reconstructs it;
    the Recon's output is center-cropped to the target's size, as fastMRI does.

    Args:
        recon: the reconstruction network, e.g. ``VarNet``.
        loss: ``"ssim"`` (1 - SSIM, fastMRI's VarNet loss), ``"l1"``, ``"mse"``, or any
            ``nn.Module`` called as ``loss(output, target, max_value)``.
        optimizer: optimizer factory, called with the trainable parameters (a ``class_path`` in
            configs). A Recon without trainable parameters (a classical baseline) is evaluated
            by ``fit`` without an optimizer.
        lr_scheduler: optional scheduler: a factory called with the optimizer (any
            ``torch.optim.lr_scheduler`` class as ``class_path``), stepped every epoch, or
            DeepInPy's shorthand ``[factor, every_n_epochs]`` for
            ``StepLR(step_size=every_n_epochs, gamma=factor)``.
        baseline: untrained reference Recons evaluated on the same batches: one Recon
            (``ZeroFilled`` for MRI, ``NoisyInput`` for denoising, ``Interpolation`` for
            super-resolution), logged as ``val/baseline_*``; or a mapping name -> Recon (e.g.
            ``zero_filled``, ``cg_sense``, ``l1_wavelet``), each logged as ``val/<name>_*``;
            ``None`` for none. Names are identifiers, not ``ssim``, ``psnr``, ``nmse`` or
            ``loss``. Baselines are not trained and not saved in checkpoints (they are rebuilt
            from the config; the ``baseline.*`` weights of older checkpoints are ignored), and
            follow the module to its device.
        init_from: a checkpoint whose Recon weights (and pruned architecture, if it has one)
            ``fit`` starts from: fine-tuning, e.g. of a ``deepinv-lab prune`` output. Unlike
            ``--ckpt_path``, no optimizer state, epoch or step is restored; a resumed run
            (``--ckpt_path last``) continues from its own checkpoint instead.
        objectives: what training minimises, a list of weighted
            :class:`~deepinv_lab.training.objectives.Objective` terms: ``Supervised``, ``SSDU``
            (self-supervised, no ground truth), ``Distillation`` (from a teacher checkpoint);
            each is logged as ``train/<name>``, their weighted sum as ``train/loss``. ``None``:
            ``loss`` against the target (``Supervised`` alone). Validation and testing always
            compare with the ground truth.
        patch_inference: validate, test and predict by overlapping patches when a batch's
            measurements have more than ``max_elements`` spatial elements per sample
            (:class:`PatchInference`: ``patch_size``, ``overlap``, ``blending``, ``margin``,
            ``max_elements``); the baselines too. Needs a local System (denoising,
            downsampling, inpainting). ``None``: always whole. Training is never patched.

    Logged: ``train/loss``; ``val/loss``, ``val/ssim``, ``val/psnr``, ``val/nmse``, the same
    metrics of each baseline as ``val/<name>_*`` (``val/baseline_*`` for a single one), and the
    Recon's
    :meth:`~deepinv_lab.recons.base.Recon.diagnostics` (solver iterations and residuals) as
    ``train/<name>`` and ``val/<name>``; ``test/*`` likewise.

    SSIM, PSNR and NMSE are fastMRI's per-volume metrics averaged over volumes
    (:class:`~deepinv_lab.training.metrics.VolumeMetrics`): batches identify their slices with
    ``volume_id`` and ``slice_num`` (each sample is its own volume when they are absent), and the
    records of all DDP processes are gathered before the volumes are evaluated. After ``test``,
    :attr:`test_results` holds the per-volume table (with the ``fname`` of each volume and the
    baselines' metrics as ``<name>_ssim`` etc.), which the CLI writes as ``test_metrics.csv``
    and ``test_metrics.json``.
    """

    def __init__(
        self,
        recon: Recon,
        loss: str | nn.Module = "ssim",
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | StepShorthand | None = None,
        baseline: Recon | dict[str, Recon] | None = None,
        init_from: str | None = None,
        objectives: list[Objective] | None = None,
        patch_inference: PatchInference | None = None,
    ):
        super().__init__()
        if built_from_config():
            # LightningCLI hands over the config of every argument (class paths included):
            # saving all of it lets a checkpoint rebuild its Recon without the original config.
            # logger=False: the CLI logs the whole run config with the final metrics instead
            # (deepinv_lab.training.callbacks.HParamsLogger).
            self.save_hyperparameters(logger=False)
        else:
            self.save_hyperparameters(
                ignore=[
                    "recon",
                    "loss",
                    "optimizer",
                    "lr_scheduler",
                    "baseline",
                    "objectives",
                    "patch_inference",
                ],
                logger=False,
            )
        self.recon = recon
        self.loss_fn = make_loss(loss)
        self.optimizer_factory = optimizer
        self.scheduler_factory = make_scheduler(lr_scheduler)
        #: the baselines by name (``{"baseline": recon}`` for a single one), in a plain dict:
        #: not submodules, so they have no weights in checkpoints, no parameters for the
        #: optimizer, EMA or DDP and no part in pruned structures; ``_apply`` moves them
        self.baselines: dict[str, Recon] = baselines_by_name(baseline)
        single = not isinstance(baseline, Mapping)
        self._baseline_keys = {
            name: "model.baseline" if single else f"model.baseline.{name}"
            for name in self.baselines
        }
        for recon in self.baselines.values():
            recon.requires_grad_(False).eval()
        self.register_load_state_dict_pre_hook(_ignore_baseline_weights)
        #: metric prefixes: ``""`` for the Recon, ``"<name>_"`` for each baseline
        self.prefixes = ("", *(f"{name}_" for name in self.baselines))
        self.metrics = nn.ModuleDict(
            {
                f"{stage}_{prefix}": VolumeMetrics()
                for stage in ("val", "test")
                for prefix in self.prefixes
            }
        )
        self._volume_names: dict[int, str] = {}
        self.test_results: list[dict] | None = None
        self.init_from = init_from
        self.objectives = check_objectives(objectives)
        if isinstance(patch_inference, Mapping):  # Python callers may give a dict
            patch_inference = PatchInference(**patch_inference)
        self.patch_inference = patch_inference
        self._initialised = False
        #: the run's whole config (set by ``deepinv-lab fit``), stored in every checkpoint so
        #: that ``--ckpt_path`` alone rebuilds the run
        self.run_config: dict | None = None

    def setup(self, stage: str) -> None:
        self._check_data()
        # before the optimizer is built and before a resumed run's own checkpoint loads
        if stage == "fit":
            for objective in self.objectives or ():
                objective.setup(self)  # a teacher copies the Recon before init_from resizes it
        if stage == "fit" and self.init_from is not None and not self._initialised:
            load_recon_weights(self.recon, self.init_from, "init_from")
            self._initialised = True

    def _check_data(self) -> None:
        """Check the Recon and the baseline against one example batch of a DataModule that
        offers one (``example_system()``: simulated data), before anything runs."""
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer else None
        example = getattr(datamodule, "example_system", None)
        if not callable(example):
            return
        system, y = example()
        physics = getattr(datamodule, "physics", None)
        data = f"data.physics {physics.describe()}" if physics is not None else "the data"
        recons = [("model.recon", self.recon)]
        recons += [(self._baseline_keys[name], b) for name, b in self.baselines.items()]
        for key, recon in recons:
            try:
                recon.check_system(system, y)
            except UserError as error:
                raise UserError(
                    f"{key} {type(recon).__name__} cannot reconstruct {data}: {error}"
                ) from None

    def _apply(self, fn, recurse: bool = True):
        # .to(device), .cuda(), .double() and Lightning's device moves all come through here:
        # the baselines, kept out of the submodules, follow the module
        super()._apply(fn, recurse)
        if recurse:
            for recon in self.baselines.values():
                recon._apply(fn)
        return self

    def forward(self, y: torch.Tensor, system: nn.Module) -> torch.Tensor:
        return self.recon(y, system)

    def reconstruct(
        self, batch: Batch, recon: nn.Module | None = None, patches: bool = False
    ) -> torch.Tensor:
        """``recon(y, system)`` of a batch (default: this module's Recon), center-cropped to the
        target's size (or to ``crop_size`` for data without targets). The batch is checked
        against :class:`~deepinv_lab.batch.Batch` first: a malformed one raises a UserError
        naming the key and the shapes. With ``patches`` (evaluation), measurements above the
        :class:`PatchInference` budget are reconstructed by overlapping patches."""
        check_batch(batch, "reconstruct")
        recon = self.recon if recon is None else recon
        y, system = batch["y"], batch["system"]
        options = self.patch_inference
        if patches and options is not None:
            output = options.reconstruct(recon, y, system)
        else:
            output = recon(y, system)
        target = batch.get("target")
        if target is not None:
            size = tuple(target.shape[-2:])
        elif "crop_size" in batch:  # data without targets (fastMRI test sets): the recon size
            size = tuple(int(n) for n in batch["crop_size"][0])
        else:
            size = tuple(output.shape[-2:])
        if tuple(output.shape[-2:]) != size:
            output = center_crop(output, size)
        return output

    def _log_diagnostics(self, stage: str, batch_size: int) -> None:
        for name, value in self.recon.diagnostics().items():
            self.log(f"{stage}/{name}", float(value), batch_size=batch_size)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor | None:
        if self.objectives is None:
            require_target(batch, "training")
            output = self.reconstruct(batch)
            loss = self.loss_fn(output, batch["target"], batch["max_value"])
        else:
            loss = self._objective(batch)
        batch_size = batch["y"].shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=batch_size)
        self._train_batch_size = batch_size
        if not loss.requires_grad:  # nothing to train: fit only evaluates
            self._log_diagnostics("train", batch_size)
            return None
        return loss

    def _objective(self, batch: Batch) -> torch.Tensor:
        """``sum_i w_i L_i`` over the objectives, each term logged as ``train/<name>``."""
        check_batch(batch, "training")
        if "target" not in batch:
            needing = [o.name for o in self.objectives if o.needs_target]
            if needing:
                raise UserError(
                    f"training: the batches have no 'target', which the {', '.join(needing)} "
                    "objective needs; 'ssdu' and 'distillation' need none"
                )
        # one reconstruction of the whole measurements, shared by the terms that compare it
        output = self.reconstruct(batch) if any(o.uses_output for o in self.objectives) else None
        loss = 0.0
        for objective in self.objectives:
            value = objective(self, batch, output)
            self.log(f"train/{objective.name}", value, batch_size=batch["y"].shape[0])
            loss = loss + objective.weight * value
        return loss

    def on_after_backward(self) -> None:
        # logged here, so that the diagnostics of the backward pass (implicit solves) are in
        self._log_diagnostics("train", getattr(self, "_train_batch_size", 1))

    def _evaluate(self, batch: Batch, stage: str) -> dict:
        require_target(batch, stage)
        output = self.reconstruct(batch, patches=True)
        target, max_value = batch["target"], batch["max_value"]
        predictions = {"": output}
        for name, recon in self.baselines.items():
            predictions[f"{name}_"] = self.reconstruct(batch, recon, patches=True)
        batch_size = output.shape[0]
        loss = self.loss_fn(output, target, max_value)
        self.log(f"{stage}/loss", loss, batch_size=batch_size, sync_dist=True)
        self._log_diagnostics(stage, batch_size)
        volume_id, slice_num = batch.get("volume_id"), batch.get("slice_num")
        if volume_id is not None and "fname" in batch:
            for number, name in zip(volume_id.tolist(), batch["fname"], strict=True):
                self._volume_names[int(number)] = name
        for prefix, prediction in predictions.items():
            self.metrics[f"{stage}_{prefix}"].update(
                prediction, target, max_value, volume_id, None if volume_id is None else slice_num
            )
        first = next(iter(self.baselines), None)  # the image grids show the first baseline
        baseline = None if first is None else predictions[f"{first}_"]
        measurement = batch["y"]
        return {
            "output": output.detach(),
            "baseline": None if baseline is None else baseline.detach(),
            "target": target,
            "max_value": max_value,
            "loss": loss.detach(),
            # an image measurement (noisy or low-resolution) is shown in the image grids
            "input": measurement if _is_image_like(measurement, target) else None,
        }

    def _log_volume_metrics(self, stage: str) -> dict[str, list[dict]]:
        """Log the epoch's per-volume metrics of every prefix; reset them; return the tables."""
        tables = {}
        for prefix in self.prefixes:
            metric = self.metrics[f"{stage}_{prefix}"]
            with metric.sync_context(should_unsync=True):
                volumes = metric.per_volume()
            metric.reset()
            if not volumes:
                continue
            for name in METRIC_NAMES:
                value = sum(v[name] for v in volumes.values()) / len(volumes)
                self.log(
                    f"{stage}/{prefix}{name}",
                    value,
                    prog_bar=stage == "val" and not prefix and name == "ssim",
                    sync_dist=True,  # the same value on every process: keeps Lightning quiet
                )
            tables[prefix] = volumes
        return tables

    def on_validation_epoch_end(self) -> None:
        self._log_volume_metrics("val")

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # a pruned Recon's channel counts travel with its weights (checkpoints/structure.py),
        # also when only a part of it was loaded from a pruned checkpoint (Refinement's stage)
        if has_pruned_architecture(self):
            checkpoint[STRUCTURE_KEY] = structure_of(self)
        if self.run_config is not None:
            checkpoint[RUN_CONFIG_KEY] = self.run_config

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # before the weights load: give the config's (unpruned) Recon the pruned shapes
        structure = checkpoint.get(STRUCTURE_KEY)
        if structure is not None:
            apply_structure(self, structure, checkpoint.get("state_dict", {}))

    def on_test_epoch_end(self) -> None:
        tables = self._log_volume_metrics("test")
        names = self._gathered_volume_names()
        rows = []
        for volume in sorted(tables.get("", {})):
            row = {"volume_id": volume, "fname": names.get(volume, str(volume))}
            for prefix, volumes in tables.items():
                for name, value in volumes[volume].items():
                    if name != "slices" or not prefix:
                        row[name if name == "slices" else f"{prefix}{name}"] = value
            rows.append(row)
        self.test_results = rows

    def _gathered_volume_names(self) -> dict[int, str]:
        names = dict(self._volume_names)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            everyone: list = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(everyone, names)
            for part in everyone:
                names.update(part)
        return names

    def validation_step(self, batch: Batch, batch_idx: int) -> dict:
        return self._evaluate(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> dict:
        return self._evaluate(batch, "test")

    def predict_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        return self.reconstruct(batch, patches=True)

    def configure_optimizers(self):
        parameters = [p for p in self.recon.parameters() if p.requires_grad]
        if not parameters:
            return None
        optimizer = self.optimizer_factory(parameters)
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self.scheduler_factory(optimizer)}


def _ignore_baseline_weights(module: nn.Module, state_dict: dict, prefix: str, *args) -> None:
    """Drop the ``baseline.*`` entries of checkpoints written while a single baseline was a
    submodule (CG-SENSE's ``log_damping``): baselines are rebuilt from the config."""
    for key in [k for k in state_dict if k.startswith(f"{prefix}baseline.")]:
        del state_dict[key]


def _is_image_like(y: torch.Tensor, target: torch.Tensor) -> bool:
    """True when ``y`` is a real image batch with the target's channels (not k-space)."""
    return (
        isinstance(y, torch.Tensor)
        and not y.is_complex()
        and y.ndim == target.ndim
        and y.shape[:2] == target.shape[:2]
    )
