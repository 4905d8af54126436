"""Lightning callbacks: TensorBoard image grids, hyperparameters and speed, reconstructions
written by ``predict`` in fastMRI's format, an exponential moving average of the weights."""

from __future__ import annotations

import time
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.callbacks import BasePredictionWriter
from pytorch_lightning.loggers import TensorBoardLogger

from deepinv_lab.checkpoints.config import flatten
from deepinv_lab.errors import UserError
from deepinv_lab.training.baselines import METRIC_NAMES


def image_grid(images: list[torch.Tensor], max_value: float | torch.Tensor) -> torch.Tensor:
    """Tile ``(C, H, W)`` images side by side into one ``(C, H, n W)`` image in ``[0, 1]``."""
    scaled = [(image.float() / max_value).clamp(0, 1) for image in images]
    return torch.cat(scaled, dim=-1)


#: the orthogonal mid-slices of a ``(C, D, H, W)`` volume, in the order :func:`mid_slices` returns
SLICE_NAMES = ("axial", "coronal", "sagittal")


def mid_slices(volume: torch.Tensor) -> list[torch.Tensor]:
    """The three orthogonal slices through the centre of a ``(C, D, H, W)`` volume: axial
    ``(C, H, W)`` (middle of D), coronal ``(C, D, W)`` (middle of H), sagittal ``(C, D, H)``
    (middle of W)."""
    depth, height, width = volume.shape[-3:]
    return [volume[:, depth // 2], volume[:, :, height // 2], volume[:, :, :, width // 2]]


def volume_grid(volumes: list[torch.Tensor], max_value: float | torch.Tensor) -> torch.Tensor:
    """``(C, D, H, W)`` volumes as one image in ``[0, 1]``: one row per orientation (axial,
    coronal, sagittal mid-slices), the volumes side by side, rows zero-padded to one width."""
    rows = [
        image_grid([mid_slices(volume)[k] for volume in volumes], max_value)
        for k in range(len(SLICE_NAMES))
    ]
    width = max(row.shape[-1] for row in rows)
    return torch.cat([F.pad(row, (0, width - row.shape[-1])) for row in rows], dim=-2)


class ImageGridLogger(pl.Callback):
    """Logs ``target | baseline | reconstruction | 5 x |error|`` of ``num_images`` validation
    samples, spread evenly over the validation set, at every validation epoch (TensorBoard's
    IMAGES tab, tag ``val/target_baseline_recon_error/<batch index>``; without a baseline
    ``val/target_recon_error/<batch index>``). With several baselines the first one (in the
    config's order) is shown. For super-resolution (an image input smaller than the target, with
    a baseline) the panels are ``LR | bicubic | SR | HR`` (``val/lr_bicubic_sr_hr/<batch
    index>``), the LR image enlarged by pixel repetition. For volumes ``(B, C, D, H, W)`` the
    same panels show the three orthogonal mid-slices, one row each (axial, coronal, sagittal;
    :func:`volume_grid`), tagged ``.../<panels>_mid_slices/<batch index>``.

    Expects ``validation_step`` to return a dict with ``output``, ``baseline`` (the first
    baseline's images, or ``None``), ``target`` ``(B, C, H, W)`` or ``(B, C, D, H, W)`` and
    ``max_value`` ``(B,)``; the
    first sample of each chosen batch is shown.
    """

    def __init__(self, num_images: int = 2, error_gain: float = 5.0):
        super().__init__()
        self.num_images = num_images
        self.error_gain = error_gain

    def _chosen_batches(self, trainer: pl.Trainer, dataloader_idx: int) -> set[int]:
        batches = trainer.num_val_batches
        total = int(batches[dataloader_idx] if isinstance(batches, list) else batches)
        if total <= 0 or self.num_images <= 0:
            return set()
        count = min(self.num_images, total)
        # evenly spaced, avoiding the first and last batches (edge slices of a volume)
        return {round((i + 1) * total / (count + 1)) for i in range(count)}

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs,
        batch,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if trainer.sanity_checking or not isinstance(outputs, dict) or "output" not in outputs:
            return
        loggers = [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
        if not loggers or not trainer.is_global_zero:
            return
        if batch_idx not in self._chosen_batches(trainer, dataloader_idx):
            return
        target, output = outputs["target"][0], outputs["output"][0]
        measured = outputs.get("input")
        baseline = outputs.get("baseline")
        if measured is not None and measured.shape[-1] < target.shape[-1] and baseline is not None:
            # super-resolution: LR (nearest-neighbour enlarged) | bicubic | SR | HR
            low = F.interpolate(measured[:1].float(), size=tuple(target.shape[1:]), mode="nearest")
            panels, tag = [low[0], baseline[0], output, target], "lr_bicubic_sr_hr"
        else:
            error = self.error_gain * (output - target).abs()
            if baseline is not None:
                panels, tag = [target, baseline[0], output, error], "target_baseline_recon_error"
            else:
                panels, tag = [target, output, error], "target_recon_error"
        if target.ndim == 4:  # a volume (C, D, H, W)
            grid, tag = volume_grid(panels, outputs["max_value"][0]), f"{tag}_mid_slices"
        else:
            grid = image_grid(panels, outputs["max_value"][0])
        for logger in loggers:
            logger.experiment.add_image(f"val/{tag}/{batch_idx}", grid.cpu(), trainer.global_step)


class ReconstructionWriter(BasePredictionWriter):
    """Writes what ``predict`` reconstructs in fastMRI's submission format: one HDF5 file per
    volume, named after it (``<fname>``, e.g. ``file1000.h5``), holding a float32 dataset
    ``reconstruction`` ``(slices, H, W)`` with the slices in ``slice_num`` order (the format of
    ``fastmri.save_reconstructions`` and of the fastMRI leaderboard).

    Batches name their volumes with ``fname`` and ``slice_num`` (the datasets of this project
    do); without them each batch is its own volume ``batch_<index>.h5``. Reconstructions
    ``(B, 1, H, W)`` are collected per process; volumes ``(B, 1, D, H, W)`` (3D
    reconstruction) are written as they are, ``reconstruction`` ``(D, H, W)``, each sample its
    own file (``batch_<index>_<sample>.h5`` without ``fname``; several parts of one ``fname``
    are stacked along D in ``slice_num`` order); at the end of the epoch every process saves its
    part, and the first one assembles the volumes, so volumes split over DDP processes come out
    whole. Written under ``output_dir`` (default: the run's log directory,
    ``reconstructions/``); existing files of the same names are replaced.
    """

    def __init__(self, output_dir: str | None = None):
        super().__init__(write_interval="batch")
        self.output_dir = output_dir
        self.written: Path | None = None
        self._slices: dict[str, dict[int, torch.Tensor]] = {}

    def _directory(self, trainer: pl.Trainer) -> Path:
        base = (
            self.output_dir or Path(trainer.log_dir or trainer.default_root_dir) / "reconstructions"
        )
        return Path(base)

    def on_predict_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._slices = {}

    def write_on_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        prediction,
        batch_indices,
        batch,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        images = prediction.detach().float().cpu()
        if images.ndim not in (4, 5) or images.shape[1] != 1:
            raise UserError(
                f"ReconstructionWriter: expected reconstructions of shape (B, 1, H, W) or "
                f"(B, 1, D, H, W), got {tuple(images.shape)}"
            )
        batch = batch if isinstance(batch, dict) else {}
        if "fname" in batch and "slice_num" in batch:
            names = [str(name) for name in batch["fname"]]
            slices = [int(n) for n in batch["slice_num"]]
        else:
            suffix = f"_{dataloader_idx}" if dataloader_idx else ""
            if images.ndim == 5:  # each sample a whole volume
                names = [f"batch_{batch_idx:05d}_{i}{suffix}" for i in range(len(images))]
                slices = [0] * len(images)
            else:
                names = [f"batch_{batch_idx:05d}{suffix}"] * len(images)
                slices = list(range(len(images)))
        for name, number, image in zip(names, slices, images, strict=True):
            self._slices.setdefault(name, {})[number] = image[0]

    def on_predict_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        directory = self._directory(trainer)
        parts = [self._slices]
        if trainer.world_size > 1:
            directory.mkdir(parents=True, exist_ok=True)
            part = directory / f".part_rank{trainer.global_rank}.pt"
            torch.save(self._slices, part)
            trainer.strategy.barrier("ReconstructionWriter")
            if trainer.is_global_zero:
                files = [directory / f".part_rank{r}.pt" for r in range(trainer.world_size)]
                parts = [torch.load(f, weights_only=True) for f in files]
                for f in files:
                    f.unlink()
        if trainer.is_global_zero:
            self._write_volumes(directory, parts)
        if trainer.world_size > 1:
            trainer.strategy.barrier("ReconstructionWriter done")
        self._slices = {}

    def _write_volumes(self, directory: Path, parts: list[dict]) -> None:
        import h5py

        volumes: dict[str, dict[int, torch.Tensor]] = {}
        for part in parts:
            for name, slices in part.items():
                volumes.setdefault(name, {}).update(slices)
        directory.mkdir(parents=True, exist_ok=True)
        for name, slices in volumes.items():
            # 2D slices (H, W) stack into (slices, H, W); volumes (D, H, W) join along D
            parts = [slices[n] for n in sorted(slices)]
            stacked = torch.cat([p if p.ndim == 3 else p[None] for p in parts]).numpy()
            filename = name if name.endswith(".h5") else f"{name}.h5"
            with h5py.File(directory / filename, "w") as file:
                file.create_dataset("reconstruction", data=stacked)
        self.written = directory


class Throughput(pl.Callback):
    """Logs training speed: ``train/it_per_s`` (optimizer-step batches per second of wall time,
    data loading included) and ``train/samples_per_s``, averaged over the steps since the last
    log, every ``log_every_n_steps``."""

    def __init__(self):
        super().__init__()
        self._last: float | None = None
        self._batches = 0
        self._samples = 0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._last, self._batches, self._samples = time.perf_counter(), 0, 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self._batches += 1
        target = batch.get("target") if isinstance(batch, dict) else None
        self._samples += len(target) if target is not None else 1
        if self._last is None or (trainer.global_step % trainer.log_every_n_steps):
            return
        elapsed = time.perf_counter() - self._last
        if elapsed <= 0:
            return
        pl_module.log("train/it_per_s", self._batches / elapsed, batch_size=1)
        pl_module.log("train/samples_per_s", self._samples / elapsed, batch_size=1)
        self._last, self._batches, self._samples = time.perf_counter(), 0, 0


def flatten_config(config: dict) -> dict[str, float | int | str | bool]:
    """Nested config -> ``{"model.init_args.recon.init_args.chans": 18, ...}`` of TensorBoard
    HParams values (numbers, strings, booleans; lists and None as strings)."""
    flat = flatten(config)
    return {k: v if isinstance(v, bool | int | float | str) else str(v) for k, v in flat.items()}


class HParamsLogger(pl.Callback):
    """Fills TensorBoard's HParams tab: the run's hyperparameters and its final metrics.

    At the start of fit/validate/test it writes the hyperparameters (``params``, the flattened
    run config the CLI passes, or else the module's ``hparams``) with the metrics the tab shows,
    ``hp/<stage>_<name>`` for the module's validation/test metrics (every baseline's included:
    ``hp/val_<baseline>_ssim``) and ``hp/train_loss``; after
    every validation and test epoch (and at the end of training) it logs those scalars with
    their current values, so the table compares runs by their final metrics.
    """

    def __init__(self, params: dict | None = None):
        super().__init__()
        self.params = params
        self._written = False
        self._logged: tuple | None = None

    @staticmethod
    def _tensorboard(trainer: pl.Trainer) -> TensorBoardLogger | None:
        loggers = [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
        return loggers[0] if loggers else None

    @staticmethod
    def _metric_names(pl_module: pl.LightningModule, stage: str) -> list[str]:
        prefixes = getattr(pl_module, "prefixes", ("",))
        names = [f"{stage}/{prefix}{name}" for prefix in prefixes for name in METRIC_NAMES]
        names.append(f"{stage}/loss")
        return names + (["train/loss"] if stage == "val" else [])

    def _write(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        logger = self._tensorboard(trainer)
        if logger is None or self._written or not trainer.is_global_zero:
            return
        from torch.utils.tensorboard.summary import hparams

        params = self.params
        if params is None:
            params = flatten_config(dict(getattr(pl_module, "hparams", {})))
        metrics = {_hp_tag(name): 0.0 for name in self._metric_names(pl_module, stage)}
        writer = logger.experiment
        for summary in hparams(params, metrics):
            writer.file_writer.add_summary(summary)
        self._written = True

    def _update(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        logger = self._tensorboard(trainer)
        if logger is None or trainer.sanity_checking or not trainer.is_global_zero:
            return
        values = {}
        for name in self._metric_names(pl_module, stage):
            value = trainer.callback_metrics.get(name)
            if value is not None and value.numel() == 1:
                values[_hp_tag(name)] = float(value)
        logged = (trainer.global_step, values)
        if values and logged != self._logged:  # training's end repeats the last validation
            logger.log_metrics(values, step=trainer.global_step)
            self._logged = logged

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._write(trainer, pl_module, "val")

    def on_validation_start(self, trainer, pl_module) -> None:
        if trainer.state.fn == "validate":
            self._write(trainer, pl_module, "val")

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._write(trainer, pl_module, "test")

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._update(trainer, pl_module, "val")

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._update(trainer, pl_module, "val")

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._update(trainer, pl_module, "test")


def _hp_tag(name: str) -> str:
    """``val/baseline_ssim`` -> ``hp/val_baseline_ssim``: HParams metrics apart from the curves."""
    return "hp/" + name.replace("/", "_")


class EMA(pl.Callback):
    """Exponential moving average of the weights, used for evaluation.

    After every optimizer step, ``ema = decay * ema + (1 - decay) * weights`` for every floating
    parameter and buffer of the module (from step ``start_step`` on; before that the average is
    the weights). Validation, test and predict run with the averaged weights, training goes on
    with the raw ones; the average is saved in checkpoints (this callback's state), so resumed
    runs and ``test --ckpt_path`` with the callback in the config use it.

    Args:
        decay: in ``[0, 1)``; 0.999 averages over about the last 1000 steps.
        start_step: optimizer steps before averaging starts.
    """

    def __init__(self, decay: float = 0.999, start_step: int = 0):
        super().__init__()
        if not 0 <= decay < 1:
            raise UserError(f"EMA: decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.start_step = start_step
        self.average: dict[str, torch.Tensor] | None = None
        self._raw: dict[str, torch.Tensor] | None = None

    @staticmethod
    def _state(pl_module: pl.LightningModule) -> dict[str, torch.Tensor]:
        return {k: v for k, v in pl_module.state_dict().items() if v.is_floating_point()}

    def _ensure(self, pl_module: pl.LightningModule) -> None:
        if self.average is None:
            self.average = {k: v.detach().clone() for k, v in self._state(pl_module).items()}
        else:
            device = next(iter(self._state(pl_module).values())).device
            self.average = {k: v.to(device) for k, v in self.average.items()}

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._ensure(pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        # on_fit_start created the average on the module's device (after any checkpoint restore)
        state = self._state(pl_module)
        if self.average is None:
            self.average = {k: v.detach().clone() for k, v in state.items()}
        decay = self.decay if trainer.global_step > self.start_step else 0.0
        with torch.no_grad():
            for name, value in state.items():
                self.average[name].lerp_(value.detach(), 1 - decay)

    def _swap_in(self, pl_module: pl.LightningModule) -> None:
        if self.average is None or self._raw is not None:
            return
        self._raw = {k: v.detach().clone() for k, v in self._state(pl_module).items()}
        pl_module.load_state_dict(self.average, strict=False)

    def _swap_out(self, pl_module: pl.LightningModule) -> None:
        if self._raw is not None:
            pl_module.load_state_dict(self._raw, strict=False)
            self._raw = None

    def on_validation_start(self, trainer, pl_module) -> None:
        self._swap_in(pl_module)

    def on_validation_end(self, trainer, pl_module) -> None:
        self._swap_out(pl_module)

    def on_test_start(self, trainer, pl_module) -> None:
        self._swap_in(pl_module)

    def on_test_end(self, trainer, pl_module) -> None:
        self._swap_out(pl_module)

    def on_predict_start(self, trainer, pl_module) -> None:
        self._swap_in(pl_module)

    def on_predict_end(self, trainer, pl_module) -> None:
        self._swap_out(pl_module)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "average": self.average}

    def load_state_dict(self, state_dict: dict) -> None:
        self.average = state_dict.get("average")


class RNGState(pl.Callback):
    """Saves the random number generators' states (torch CPU and CUDA, numpy, Python) in every
    checkpoint and restores them when training resumes, so that randomness drawn in the training
    step (dropout, random masks of self-supervised losses) continues as in an uninterrupted run.
    The data's randomness does not need it: it is seeded per item
    (:mod:`deepinv_lab.data.samplers`)."""

    def state_dict(self) -> dict:
        import random

        import numpy as np

        kind, keys, position, has_gauss, cached = np.random.get_state()
        state = {
            "torch": torch.get_rng_state(),
            # plain tensors and numbers: checkpoints stay loadable with weights_only=True
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached],
            "python": random.getstate(),
        }
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        import random

        import numpy as np

        if "torch" in state_dict:
            torch.set_rng_state(state_dict["torch"])
        if "numpy" in state_dict:
            kind, keys, position, has_gauss, cached = state_dict["numpy"]
            np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
        if "python" in state_dict:
            version, internal, gauss = state_dict["python"]
            random.setstate((version, tuple(internal), gauss))
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])
