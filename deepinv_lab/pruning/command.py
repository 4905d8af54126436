"""``deepinv-lab prune``: prune a trained Recon's priors, fine-tune, measure, report.

::

    deepinv-lab prune --config X.json --ckpt_path trained.ckpt --prune.ratio 0.5
        [--prune.importance l1|l2|taylor] [--prune.scope per_block|global]
        [--prune.finetune supervised,ssdu,distillation] [--prune.finetune_steps N]
        [--prune.ratios 0.1,0.3,0.5] [--prune.out DIR] [--key value ...]

The config is the one the checkpoint was trained with (its ``prune`` section, if any, holds
defaults for the ``--prune.*`` options; any other ``--key value`` overrides the config as in
``fit``). For each ratio, in ``DIR/ratio_<r>/``:

1. ``pruned.ckpt``: the Recon with ``ratio`` of its priors' channels removed
   (:mod:`.structured`), loadable by ``test``/``predict`` and by ``fit`` (as
   ``--model.init_args.init_from``) with the same config;
2. with ``prune.finetune``: ``finetune.json``, a ``fit`` config whose ReconModule starts from
   ``pruned.ckpt`` (``init_from``) and minimises the chosen
   :mod:`~deepinv_lab.training.objectives` (``supervised``, ``ssdu``, ``distillation`` from the
   unpruned checkpoint), run as ``deepinv-lab fit`` into ``finetune/`` (TensorBoard curves,
   checkpoints, resumable);
3. ``report.csv``/``report.json``: parameters, MACs, latency and validation PSNR/SSIM of the
   unpruned, pruned and fine-tuned networks.

``DIR/report.csv`` gathers every ratio; ``DIR/sweep.png`` plots quality against speedup;
``DIR/tensorboard`` holds the same as TensorBoard scalars. A ratio whose report exists is not
run again, so an interrupted sweep resumes; the input checkpoint is only read.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from argparse import ArgumentError
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from deepinv_lab.checkpoints import (
    STRUCTURE_KEY,
    load_recon_weights,
    read_checkpoint,
    resume_checkpoint,
    structure_of,
)
from deepinv_lab.checkpoints.config import RUN_CONFIG_KEY
from deepinv_lab.config_errors import describe_parser_error
from deepinv_lab.errors import UserError
from deepinv_lab.files import write_json_atomic
from deepinv_lab.pruning.measure import (
    count_macs,
    count_parameters,
    move_batch,
    one_sample,
    time_interleaved,
    validation_metrics,
)
from deepinv_lab.pruning.options import PruneOptions, add_prune_arguments
from deepinv_lab.pruning.report import (
    format_table,
    log_tensorboard,
    plot_sweep,
    with_changes,
    write_csv,
)
from deepinv_lab.pruning.structured import (
    PruningError,
    block_inputs,
    prunable_blocks,
    prune_blocks,
)
from deepinv_lab.training.module import ReconModule
from deepinv_lab.training.objectives import OBJECTIVES

RECON_MODULE = f"{ReconModule.__module__}.{ReconModule.__qualname__}"


def prune_command(args: list[str], config_parser: Callable[..., Any]) -> int:
    """Run ``deepinv-lab prune`` (see the module docstring). It parses with ``fit``'s parser
    (``config_parser``) plus the ``prune`` group; a :class:`~deepinv_lab.errors.UserError`
    names what the user gave wrong."""
    parser = config_parser(add_prune_arguments)
    command = ["fit", *args]
    try:
        namespace = parser.parse_args(command)
    except ArgumentError as error:
        raise UserError(describe_parser_error(error, parser, command)) from error
    config = namespace.fit
    if not config.get("config"):
        raise PruningError("give the config the checkpoint was trained with: --config X.json")
    if not config.get("ckpt_path"):
        raise PruningError("give the trained checkpoint: --ckpt_path CKPT")
    options = PruneOptions(**config.prune.as_dict())
    checkpoint = Path(config.ckpt_path).resolve()
    out = Path(options.out).resolve()
    if out in checkpoint.parents:
        raise PruningError(
            f"the input checkpoint {checkpoint} lies inside the output directory {out}; choose "
            "another prune.out (the input is never written to)"
        )
    source = read_checkpoint(checkpoint, "--ckpt_path")  # once: weights and metadata
    resolved = json.loads(parser.dump(namespace, format="json", skip_none=False))["fit"]
    for key in ("config", "ckpt_path", "prune"):
        resolved.pop(key, None)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "config.json", resolved)
    write_json_atomic(out / "prune.json", {"checkpoint": str(checkpoint), **vars(options)})

    session = PruningSession(parser, namespace, resolved, checkpoint, source, options, out)
    del source
    rows = session.run()
    if len(options.sweep) > 1:
        title = Path(str(config.config[0])).stem
        plot = plot_sweep(rows, out / "sweep.png", title=title)
        print(f"  speed vs quality: {plot}")
    return 0


class PruningSession:
    """One ``deepinv-lab prune`` run: the unpruned network measured once, then each ratio.

    Args:
        parser, namespace: the parser and what it parsed (``fit``'s keys and ``prune``).
        resolved: the run's full config (without ``prune``), as ``fit`` would run it.
        checkpoint, source: the trained checkpoint's path and contents.
        options: the prune options; ``out`` their output directory.
    """

    def __init__(self, parser, namespace, resolved: dict, checkpoint: Path, source: dict,
                 options: PruneOptions, out: Path):  # fmt: skip
        self.options, self.out, self.checkpoint = options, out, checkpoint
        self.resolved = resolved
        model_class = self.resolved["model"]["class_path"]
        if model_class != RECON_MODULE and options.finetune:
            raise PruningError(
                f"prune.finetune fine-tunes a ReconModule; the config's model is {model_class}"
            )
        pl.seed_everything(self.resolved.get("seed_everything") or 0, verbose=False)
        # jsonargparse >= 4.49 renamed instantiate_classes
        instantiate = getattr(parser, "instantiate", None) or parser.instantiate_classes
        init = instantiate(namespace)["fit"]
        self.model, self.data = init["model"], init["data"]
        if not isinstance(self.model, ReconModule):
            raise PruningError(f"the config's model {model_class} is not a ReconModule")
        load_recon_weights(self.model.recon, str(checkpoint), "--ckpt_path", source)
        kept = ("hyper_parameters", "hparams_name", "datamodule_hyper_parameters", RUN_CONFIG_KEY)
        self.source_metadata = {key: source[key] for key in kept if key in source}
        self.model.eval()
        prunable_blocks(self.model.recon, options.include_sensitivity)  # nothing prunable: fail now
        self.accelerator = str(self.resolved.get("trainer", {}).get("accelerator") or "auto")
        self.data.setup("fit")
        self.batch = next(iter(self.data.train_dataloader()))
        self.timing_batch = one_sample(next(iter(self.data.val_dataloader())))

    def run(self) -> list[dict]:
        unpruned = self._unpruned()
        rows = [unpruned]
        for ratio in self.options.sweep:
            rows += self._ratio(ratio, unpruned)
        rows = with_changes(rows, unpruned)
        write_csv(rows, self.out / "report.csv")
        log_tensorboard(rows, self.out / "tensorboard")
        print("\n" + format_table(rows))
        print(f"\n  report: {self.out / 'report.csv'}  (tensorboard --logdir {self.out})")
        return rows

    def _unpruned(self) -> dict:
        """The input network's row, cached in ``DIR/unpruned.json`` for the same checkpoint
        and measurement options (a sweep resumed or extended measures it once)."""
        path = self.out / "unpruned.json"
        stat = self.checkpoint.stat()
        key = {
            "checkpoint": str(self.checkpoint),
            "size": stat.st_size,
            "mtime": stat.st_mtime,
            "val_batches": self.options.val_batches,
            "repeats": self.options.repeats,
            "threads": torch.get_num_threads(),
        }
        if path.is_file():
            cached = json.loads(path.read_text())
            if cached.get("key") == key:
                return cached["row"]
        row = self._measure(self.model, 0.0, "unpruned", self.checkpoint)
        row.update(self._latencies({"unpruned": self.model})["unpruned"])
        row["speedup_cpu"] = 1.0
        row["speedup_cuda"] = 1.0 if row["latency_cuda_ms"] else None
        write_json_atomic(path, {"key": key, "row": row})
        return row

    def _ratio(self, ratio: float, unpruned: dict) -> list[dict]:
        name = f"ratio_{ratio:.2f}" if round(ratio, 2) == ratio else f"ratio_{ratio:g}"
        directory = self.out / name
        report = directory / "report.json"
        recorded = directory / "options.json"
        options = self._run_options(ratio)
        if recorded.is_file() and json.loads(recorded.read_text()) != options:
            raise PruningError(
                f"{directory} holds a run with other options ({recorded}); choose another "
                "prune.out or remove that directory"
            )
        if report.is_file():
            print(f"ratio {ratio:g}: done before, reusing {report}")
            return json.loads(report.read_text())["rows"]
        directory.mkdir(parents=True, exist_ok=True)
        write_json_atomic(recorded, options)
        print(f"ratio {ratio:g}: pruning ({self.options.importance}, {self.options.scope})")
        model = copy.deepcopy(self.model)
        pruning = self._prune(model, ratio)
        pruned_path = directory / "pruned.ckpt"
        self._save(model, pruned_path, ratio, pruning)
        rows = [self._measure(model, ratio, "pruned", pruned_path)]
        models = {"unpruned": self.model, "pruned": model}
        if self.options.finetune:
            finetuned = self._finetune(directory, pruned_path)
            tuned = copy.deepcopy(self.model)
            load_recon_weights(tuned.recon, str(finetuned), "fine-tuned checkpoint")
            rows.append(self._measure(tuned, ratio, "finetuned", finetuned))
            models["finetuned"] = tuned
        # timed in turns with the unpruned network: speedups from the same moments
        latencies = self._latencies(models)
        for row in rows:
            row.update(latencies[row["stage"]])
            for device in ("cpu", "cuda"):
                mine = row[f"latency_{device}_ms"]
                reference = latencies["unpruned"][f"latency_{device}_ms"]
                row[f"unpruned_{device}_ms"] = reference
                row[f"speedup_{device}"] = reference / mine if mine and reference else None
        rows = with_changes(rows, unpruned)
        write_csv([unpruned, *rows], directory / "report.csv")
        blocks = [vars(p) for p in pruning]
        write_json_atomic(report, {"rows": rows, "blocks": blocks})
        print(format_table([unpruned, *rows]))
        return rows

    def _run_options(self, ratio: float) -> dict:
        """What a ratio's results depend on: a directory holding other ones is not reused."""
        options = vars(self.options)
        kept = ("importance", "scope", "include_sensitivity", "finetune", "finetune_steps",
                "holdout", "repeats", "warmup", "val_batches")  # fmt: skip
        config = json.dumps(self.resolved, sort_keys=True, default=str).encode()
        return {
            "checkpoint": str(self.checkpoint),
            "ratio": ratio,
            **{key: options[key] for key in kept},
            "config_sha256": hashlib.sha256(config).hexdigest(),
        }

    def _prune(self, model, ratio: float):
        blocks = prunable_blocks(model.recon, self.options.include_sensitivity)
        batch = self.batch

        def reconstruct():
            return model.reconstruct(batch)

        def loss():
            return model.loss_fn(reconstruct(), batch["target"], batch["max_value"])

        inputs = block_inputs(model.recon, blocks, reconstruct)
        return prune_blocks(blocks, inputs, ratio, self.options.importance, self.options.scope,
                            loss=loss if self.options.importance == "taylor" else None)  # fmt: skip

    def _save(self, model, path: Path, ratio: float, pruning) -> None:
        """A Lightning checkpoint of the pruned module: the input's metadata and
        hyperparameters, the pruned weights and architecture, no training state."""
        checkpoint = dict(self.source_metadata)
        checkpoint.update(
            {
                "pytorch-lightning_version": pl.__version__,
                "epoch": 0,
                "global_step": 0,
                "state_dict": model.state_dict(),
                STRUCTURE_KEY: structure_of(model),
                "pruning": {
                    "source": str(self.checkpoint),
                    "ratio": ratio,
                    "importance": self.options.importance,
                    "scope": self.options.scope,
                    "blocks": [vars(p) for p in pruning],
                },
            }
        )
        _save_atomic(checkpoint, path, self.checkpoint)

    def _finetune(self, directory: Path, pruned: Path) -> Path:
        """Fine-tune ``pruned`` with ``deepinv-lab fit`` in ``directory/finetune`` (resumed from
        its last checkpoint if a previous run was interrupted); the final checkpoint."""
        config = self._finetune_config(directory, pruned)
        config_path = directory / "finetune.json"
        write_json_atomic(config_path, config)
        run = directory / "finetune"
        command = [sys.executable, "-m", "deepinv_lab.cli", "fit", "--config", str(config_path)]
        last = resume_checkpoint(run)
        if last is not None:
            print(f"  resuming fine-tuning from {last}")
            command += ["--ckpt_path", str(last)]
        strategies = ", ".join(f"{k} x{v:g}" for k, v in self.options.finetune.items())
        print(f"  fine-tuning ({strategies}) for {self.options.finetune_steps} steps: "
              f"{directory / 'finetune.log'}")  # fmt: skip
        with open(directory / "finetune.log", "a") as log:
            done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False)
        if done.returncode != 0:
            raise PruningError(
                f"fine-tuning failed (exit {done.returncode}); see {directory / 'finetune.log'}"
            )
        final = resume_checkpoint(run)
        if final is None:
            raise PruningError(f"fine-tuning wrote no last.ckpt in {run / 'checkpoints'}")
        return final

    def _finetune_config(self, directory: Path, pruned: Path) -> dict:
        config = copy.deepcopy(self.resolved)
        model = config["model"]
        init_args = dict(model.get("init_args") or {})
        objectives = []
        for name, weight in self.options.finetune.items():
            arguments: dict[str, Any] = {"weight": weight}
            if name == "ssdu":
                arguments["holdout"] = self.options.holdout
            if name == "distillation":
                arguments["teacher"] = str(self.checkpoint)
            kind = OBJECTIVES[name]
            class_path = f"{kind.__module__}.{kind.__qualname__}"
            objectives.append({"class_path": class_path, "init_args": arguments})
        init_args.update({"init_from": str(pruned), "objectives": objectives})
        config["model"] = {"class_path": RECON_MODULE, "init_args": init_args}
        trainer = config.setdefault("trainer", {})
        trainer.update({"max_steps": self.options.finetune_steps, "max_epochs": -1})
        trainer["logger"] = {
            "class_path": "pytorch_lightning.loggers.TensorBoardLogger",
            "init_args": {"save_dir": str(directory), "name": "", "version": "finetune"},
        }
        trainer["enable_progress_bar"] = False
        return config

    def _measure(self, model, ratio: float, stage: str, checkpoint: Path) -> dict:
        """Parameters, MACs of one reconstruction, validation metrics."""
        model.eval()
        recon = model.recon.to("cpu")
        blocks = prunable_blocks(recon, self.options.include_sensitivity)
        batch = move_batch(self.timing_batch, torch.device("cpu"))
        macs = count_macs(recon, lambda: model.reconstruct(batch))
        metrics = validation_metrics(model, self.data, self.accelerator, self.options.val_batches)
        model.to("cpu")
        return {
            "ratio": ratio,
            "stage": stage,
            "params": count_parameters(recon),
            "prior_params": sum(count_parameters(b) for b in blocks.values()),
            "gmacs": macs / 1e9,
            "val_psnr": metrics.get("val/psnr"),
            "val_ssim": metrics.get("val/ssim"),
            "checkpoint": str(checkpoint),
        }

    def _latencies(self, models: dict) -> dict[str, dict]:
        """Median latency of one reconstruction per model, on the CPU and on the GPU if there
        is one; the models are timed in turns (:func:`~.measure.time_interleaved`)."""
        out = {name: {"latency_cuda_ms": None} for name in models}
        devices = [torch.device("cpu")]
        if torch.cuda.is_available():
            devices.append(torch.device("cuda"))
        for device in devices:
            batch = move_batch(self.timing_batch, device)
            runs = {}
            for name, model in models.items():
                model.eval().to(device)
                runs[name] = lambda model=model, batch=batch: model.reconstruct(batch)
            timed = time_interleaved(runs, device, self.options.warmup, self.options.repeats)
            for name, latency in timed.items():
                out[name][f"latency_{device.type}_ms"] = latency.median_ms
                if device.type == "cpu":
                    out[name]["cpu_threads"] = latency.threads
        for model in models.values():
            model.to("cpu")
        return out


def _save_atomic(checkpoint: dict, path: Path, source: Path) -> None:
    """``torch.save`` through a temporary file, never onto ``source``."""
    if path.resolve() == source.resolve():
        raise PruningError(f"refusing to overwrite the input checkpoint {source}")
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(handle)
    try:
        torch.save(checkpoint, temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
