"""``deepinv-lab fit|validate|test|predict``: LightningCLI with the project's run policy.

What a run does with checkpoints, run directories and the config (``docs/training.md``):

- ``fit`` logs into a new ``<save_dir>/<name>/version_N``; ``--ckpt_path last`` continues the
  run named by ``--trainer.logger.init_args.version``, or the only resumable run under
  ``<save_dir>/<name>`` (several: an error listing them; none: a new run, said so).
- ``validate``/``test``/``predict`` given a checkpoint of a run directory write into
  ``<run>/<stage>/`` (metrics, TensorBoard events, reconstructions), not a new ``version_N``.
- A checkpoint stores its run's config: ``--ckpt_path X`` alone rebuilds the run. With a
  config too, the config's Recon must be the checkpoint's (another class, or layers whose
  shapes differ, is an error naming both); other differences are printed and the config wins.
- ``<run>/checkpoints/last.ckpt`` (:class:`~deepinv_lab.training.checkpointing.
  ResumeCheckpoint`) holds the whole training state; the config's ``ModelCheckpoint`` keeps the
  best weights.
- A command that fails before anything was trained leaves no run directory behind.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from jsonargparse import Namespace
from pytorch_lightning.cli import LightningCLI

# Importing the block packages makes their classes resolvable by short name in configs.
import deepinv_lab.data.datamodule  # noqa: F401
import deepinv_lab.data.fastmri_datamodule  # noqa: F401
import deepinv_lab.data.folder_datamodules  # noqa: F401
import deepinv_lab.data.physics  # noqa: F401
import deepinv_lab.data.presets  # noqa: F401
import deepinv_lab.data.simulation_datamodule  # noqa: F401
import deepinv_lab.data.sources  # noqa: F401
import deepinv_lab.recons  # noqa: F401
from deepinv_lab.checkpoints import (
    STRUCTURE_KEY,
    read_checkpoint,
    resume_checkpoint,
    state_mismatch,
)
from deepinv_lab.checkpoints.config import (
    RECON_CLASS_KEY,
    config_differences,
    describe_differences,
    run_config,
    stored_model_config,
    stored_run_config,
)
from deepinv_lab.checkpoints.runs import logger_version, run_to_resume, version_directory
from deepinv_lab.errors import UserError
from deepinv_lab.training.console import say
from deepinv_lab.training.module import ReconModule

DEFAULT_DATA = "deepinv_lab.data.presets.SimulatedBrainMRIDataModule"
#: ``--ckpt_path`` values that Lightning resolves within one process only
IN_PROCESS_CHECKPOINTS = ("best", "hpc")
#: Lightning's log lines that advertise rather than inform
QUIET_PREFIXES = ("💡 Tip", "Trainer already configured with model summary callbacks")


@dataclass
class Session:
    """What one command learned while it ran, for the code around it: the checkpoint it
    resumes or evaluates, how the config differs from it, and the run directory it created."""

    args: list[str]
    checkpoint_path: str | None = None
    checkpoint: dict | None = None
    differences: list = field(default_factory=list)
    resumed_run: Path | None = None
    created_run: Path | None = None
    trainer: Any = None


def config_parser(extra_arguments: Callable[[Any], None] | None = None):
    """The parser of ``deepinv-lab fit|validate|test|predict``, without running anything: what
    the grid and ``prune`` use to resolve configs exactly as ``fit`` would.
    ``extra_arguments(parser)`` adds a command's own group to each subcommand's parser (e.g.
    ``prune``'s options)."""
    return _ParserOnly(extra_arguments).parser


def run(args: list[str]) -> None:
    """Run ``deepinv-lab <args>`` (a Lightning subcommand). A run directory this command
    created is removed again when it fails before training anything."""
    _quiet_lightning()
    session = Session(args)
    try:
        DeepInvLabCLI(session, _with_checkpoint_config(args, session))
    except BaseException:
        _remove_created_run(session)
        raise
    finally:
        session.checkpoint = None
    _close_process_group()


class DeepInvLabCLI(LightningCLI):
    """LightningCLI for a ``ReconModule`` (any subclass) and any LightningDataModule, with the
    run policy of this module's docstring."""

    def __init__(
        self,
        session: Session,
        args: list[str],
        extra_arguments: Callable[[Any], None] | None = None,
        load_from_checkpoint_support: bool = True,
    ):
        self.session = session
        self.extra_arguments = extra_arguments
        super().__init__(
            ReconModule,
            pl.LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            args=args,
            trainer_defaults={
                "logger": {
                    "class_path": "pytorch_lightning.loggers.TensorBoardLogger",
                    "init_args": {"save_dir": "logs", "name": "default"},
                },
            },
            save_config_kwargs={"overwrite": True},
            # allow_abbrev=False: a prefix (--trainer.max_epoch) is an unknown key, not a guess
            parser_kwargs={
                "exit_on_error": False,
                "allow_abbrev": False,
                **{name: {"allow_abbrev": False} for name in LightningCLI.subcommands()},
            },
            auto_configure_optimizers=False,
            load_from_checkpoint_support=load_from_checkpoint_support,
        )

    # --- parsing ------------------------------------------------------------------------------

    def parse_arguments(self, parser, args: list[str]) -> None:
        """Parse ``args`` (always given: the command line, with a checkpoint's stored config
        inserted); a parser error becomes a UserError saying which key, file and value."""
        from argparse import ArgumentError

        from deepinv_lab.config_errors import describe_parser_error

        try:
            self.config = parser.parse_args(args)
        except ArgumentError as error:
            raise UserError(describe_parser_error(error, parser, args)) from error

    def add_arguments_to_parser(self, parser) -> None:
        parser.set_defaults({"data": {"class_path": DEFAULT_DATA}})
        parser.add_argument(
            "--checkpoint_every_n_steps",
            type=int | None,
            default=None,
            help="fit: also write the resume checkpoint (last.ckpt) every N optimizer steps; "
            "null: every half epoch, at most every 1000 steps; 0: only at epoch ends",
        )
        if self.extra_arguments is not None:
            self.extra_arguments(parser)

    def _parse_ckpt_path(self) -> None:
        """Replaces Lightning's, which silently swaps the config's model for the checkpoint's
        hyperparameters: here the checkpoint is found (``last``), read once, and compared with
        the config (:meth:`_compare_with_checkpoint`)."""
        subcommand = self.config.get("subcommand")
        if not subcommand:
            return
        config = self.config[subcommand]
        path = config.get("ckpt_path")
        if not path:
            return
        path = str(path)
        logger = _logger_arguments(config)
        if path == "last":
            path = self._resolve_last(subcommand, logger)
            config.ckpt_path = path
            if path is None:
                return
        elif path in IN_PROCESS_CHECKPOINTS or path.startswith("registry"):
            raise UserError(
                f"--ckpt_path {path}: only a checkpoint file or 'last' (the newest checkpoint of "
                "a run, see --trainer.logger.init_args.version) can be given to a new command"
            )
        checkpoint = self.session.checkpoint
        if checkpoint is None or self.session.checkpoint_path != path:  # not read before
            checkpoint = read_checkpoint(path, "--ckpt_path")
        if subcommand == "fit" and "optimizer_states" not in checkpoint:
            raise UserError(
                f"--ckpt_path {path} holds weights only (no optimizer state to resume; e.g. a "
                f"best checkpoint or a `deepinv-lab prune` output): to train from it, use "
                f"--model.init_args.init_from {path}"
            )
        self.session.checkpoint_path, self.session.checkpoint = path, checkpoint
        self._compare_with_checkpoint(config)
        run = _run_of(Path(path))
        if subcommand == "fit" and run is not None and _same_directory(run, _logger_run(logger)):
            self.session.resumed_run = run  # continues in its own run (the grid resumes so)
        if subcommand != "fit" and run is not None and logger is not None:
            if logger.get("version") is None:  # <run>/<stage>/, not a new version_N
                logger["save_dir"], logger["name"] = str(run.parent.parent), run.parent.name
                logger["version"] = f"{run.name}/{subcommand}"

    def _resolve_last(self, subcommand: str, logger) -> str | None:
        """``--ckpt_path last``: the resume checkpoint of the run the user means (see
        :func:`~deepinv_lab.checkpoints.runs.run_to_resume`); the logger then writes there."""
        if logger is None or not logger.get("save_dir"):
            raise UserError(
                "--ckpt_path last looks for runs in the logger's directory: give a "
                "trainer.logger with save_dir and name (TensorBoardLogger), or a checkpoint file"
            )
        root = Path(logger["save_dir"]) / (logger.get("name") or "")
        version = logger.get("version")
        run = run_to_resume(root, version)
        if run is None:
            where = root / version_directory(version) if version is not None else root
            if subcommand != "fit":
                raise UserError(f"--ckpt_path last: no run in {where} has a checkpoints/last.ckpt")
            say(f"--ckpt_path last: nothing to resume in {where}; starting a new run")
            return None
        checkpoint = resume_checkpoint(run)
        if subcommand == "fit":
            logger["version"] = logger_version(run.name)
            self.session.resumed_run = run
            say(f"resuming {run} from {checkpoint.name}")
        return str(checkpoint)

    def _compare_with_checkpoint(self, config) -> None:
        """A checkpoint of another Recon class is an error naming both; the config's other
        differences from the checkpoint's own are kept for :meth:`_check_weights_fit`."""
        stored = stored_model_config(self.session.checkpoint)
        if stored is None:
            return
        given = json.loads(self.parser.dump(self.config, format="json"))
        given = given[self.config.subcommand]["model"]
        differences = config_differences(given, stored)
        self.session.differences = differences
        for key, mine, theirs in differences:
            if key == RECON_CLASS_KEY:
                raise UserError(
                    f"--ckpt_path {self.session.checkpoint_path} holds a {theirs} but the config "
                    f"builds a {mine} ({key}); give the config the checkpoint was trained with, "
                    "or only --ckpt_path to use the config stored in it"
                )

    # --- instantiation ------------------------------------------------------------------------

    def instantiate_trainer(self, **kwargs):
        from deepinv_lab.training.defaults import default_callbacks

        trainer_config = self._get(self.config_init, "trainer", default={})
        present = trainer_config.get("callbacks") or []
        present = list(present) if isinstance(present, list) else [present]
        subcommand = str(self.subcommand)
        config = self.config.get(subcommand, self.config)
        extra = default_callbacks(
            present,
            subcommand,
            config.get("checkpoint_every_n_steps"),
            config.as_dict() if hasattr(config, "as_dict") else dict(config),
            checkpointing=trainer_config.get("enable_checkpointing", True) is not False,
            summary=trainer_config.get("enable_model_summary", True) is not False,
            command=self.session.args,
        )
        # A ModelCheckpoint restored from a checkpoint of another folder (an evaluation in
        # <run>/<stage>/, a fit started from another run's checkpoint) only forgets its best
        # scores; a resumed run finds its own checkpoint folder: nothing to act on.
        warnings.filterwarnings("ignore", message=r".*dirpath has changed from")
        if self.session.resumed_run is not None:
            warnings.filterwarnings("ignore", message=r"Checkpoint directory .* is not empty")
        return super().instantiate_trainer(callbacks=present + extra, **kwargs)

    # --- running ------------------------------------------------------------------------------

    def _before(self) -> None:
        self._started = time.perf_counter()
        if self.session.checkpoint is not None:
            self._check_weights_fit()
        if self.subcommand == "fit":
            config = json.loads(self.parser.dump(self.config, format="json"))
            self.model.run_config = run_config(config["fit"])
        log_dir = self.trainer.log_dir  # a collective under DDP: every process asks
        if log_dir and self.trainer.is_global_zero:
            self.session.created_run = _first_missing(Path(log_dir))
        self.session.trainer = self.trainer
        if self.session.resumed_run is not None and self.trainer.is_global_zero:
            _purge_later_events(self.trainer, self.session.checkpoint)
        self.session.checkpoint = None  # Lightning reads the file itself

    before_fit = before_validate = before_test = before_predict = _before

    def _check_weights_fit(self) -> None:
        """The checkpoint's weights fit the config's model: else an error naming the layers and
        how the config differs from the checkpoint's; if they fit, differences are printed."""
        checkpoint, path = self.session.checkpoint, self.session.checkpoint_path
        state = checkpoint.get("state_dict", {})
        if checkpoint.get(STRUCTURE_KEY) is not None:  # a pruned checkpoint: keys must match
            expected, given = set(self.model.state_dict()), set(state)
            problems = "; ".join(
                f"{label} {sorted(keys)[:3]}"
                for label, keys in (("missing", expected - given), ("unexpected", given - expected))
                if keys
            )
        else:
            problems = state_mismatch(self.model, state)
        differences = describe_differences(self.session.differences)
        if problems:
            because = f"; the config differs from the checkpoint's in {differences}"
            raise UserError(
                f"--ckpt_path {path} does not fit the config's {type(self.model).__name__} "
                f"({problems}){because if differences else ''}; give the config it was trained "
                "with, or only --ckpt_path to use the config stored in it"
            )
        if differences:
            say(
                f"note: the config differs from the checkpoint's in {differences}; the config's "
                "values are used"
            )

    def _summary(self, stage: str) -> None:
        trainer = self.trainer
        log_dir = trainer.log_dir  # a collective under DDP: every process asks
        if not trainer.is_global_zero:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        shown = [
            f"{k}={v:.4g}"
            for k, v in sorted(metrics.items())
            if k.startswith(f"{stage}/") and not k.endswith("/loss")
        ]
        elapsed = time.perf_counter() - self._started
        print(f"\ndeepinv-lab {self.subcommand} finished in {elapsed:.0f} s")
        if shown:
            print(f"  {stage} metrics: " + "  ".join(shown))
        if trainer.logger is not None and log_dir:
            print(f"  logs: {log_dir}  (view: tensorboard --logdir {trainer.logger.save_dir})")
        if self.subcommand == "fit" and log_dir:
            best = [
                c.best_model_path
                for c in trainer.callbacks
                if isinstance(c, pl.callbacks.ModelCheckpoint) and c.best_model_path
            ]
            shown_best = f"  (best: {best[0]})" if best else ""
            print(f"  checkpoints: {Path(log_dir) / 'checkpoints'}{shown_best}")

    def after_fit(self) -> None:
        self._summary("val")

    def after_validate(self) -> None:
        self._summary("val")

    def after_test(self) -> None:
        self._summary("test")
        results = getattr(self.model, "test_results", None)
        log_dir = self.trainer.log_dir  # a collective under DDP: every process asks
        if results and self.trainer.is_global_zero:
            directory = Path(log_dir or self.trainer.default_root_dir)
            written = write_test_metrics(
                results, directory, self.trainer.callback_metrics, self.session.checkpoint_path
            )
            print(f"  per-volume metrics: {written[0]} and {written[1].name}")

    def after_predict(self) -> None:
        from deepinv_lab.training.callbacks import ReconstructionWriter

        self._summary("predict")
        writers = [c for c in self.trainer.callbacks if isinstance(c, ReconstructionWriter)]
        for writer in writers:
            if writer.written is not None and self.trainer.is_global_zero:
                print(f"  reconstructions: {writer.written}")


class _ParserOnly(DeepInvLabCLI):
    """A DeepInvLabCLI that builds its parser and stops there: it parses nothing, sets no seed,
    instantiates nothing and runs no subcommand (``self.parser`` is the result)."""

    def __init__(self, extra_arguments: Callable[[Any], None] | None = None):
        super().__init__(Session([]), [], extra_arguments, load_from_checkpoint_support=False)

    def parse_arguments(self, parser, args) -> None:
        # no subcommand: LightningCLI then runs nothing; no seed to set
        self.config = Namespace(subcommand=None, seed_everything=False)

    def _parse_ckpt_path(self) -> None:
        """Nothing was parsed, so there is no checkpoint to resolve."""

    def instantiate_classes(self) -> None:
        """The parser is the result: no class is built."""


def write_test_metrics(
    results: list[dict], directory: Path, summary: dict, checkpoint: str | None = None
) -> tuple[Path, Path]:
    """``test_metrics.csv`` (one row per volume) and ``test_metrics.json`` (the per-volume rows,
    the mean of each ``test/*`` metric and the checkpoint tested) in ``directory``."""
    import csv

    directory.mkdir(parents=True, exist_ok=True)
    columns = list(dict.fromkeys(key for row in results for key in row))
    csv_path = directory / "test_metrics.csv"
    with open(csv_path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        writer.writerows(results)
    means = {
        key: float(value)
        for key, value in sorted(summary.items())
        if key.startswith("test/") and getattr(value, "numel", lambda: 0)() == 1
    }
    json_path = directory / "test_metrics.json"
    content = {"checkpoint": checkpoint, "mean": means, "volumes": results}
    json_path.write_text(json.dumps(content, indent=2) + "\n")
    return csv_path, json_path


# --- helpers ----------------------------------------------------------------------------------


def _with_checkpoint_config(args: list[str], session: Session) -> list[str]:
    """``deepinv-lab <stage> --ckpt_path X`` without ``--config``: the run config stored in X
    becomes the config (given first, so that other ``--key value`` pairs override it). The
    checkpoint read is kept in ``session`` for :meth:`DeepInvLabCLI._parse_ckpt_path`."""
    if any(a in ("--config", "-c") or a.startswith("--config=") for a in args):
        return args
    path = _option_value(args, "--ckpt_path")
    if path is None or "--help" in args or "-h" in args:
        return args
    if path == "last":
        raise UserError(
            "--ckpt_path last needs --config (the run's logger directory is in it); or give the "
            "checkpoint file itself"
        )
    checkpoint = read_checkpoint(path, "--ckpt_path")
    session.checkpoint_path, session.checkpoint = path, checkpoint
    stored = stored_run_config(checkpoint)
    if stored is None:
        model = stored_model_config(checkpoint)
        if model is None:
            raise UserError(
                f"--ckpt_path {path} holds no config (not written by deepinv-lab fit): give the "
                "config it was trained with (--config)"
            )
        stored = {"model": model}
    say(f"using the config stored in {path}")
    return [args[0], "--config", json.dumps(stored), *args[1:]]


def _option_value(args: list[str], option: str) -> str | None:
    for index, arg in enumerate(args):
        if arg == option and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(f"{option}="):
            return arg.split("=", 1)[1]
    return None


def _logger_arguments(config):
    """The ``init_args`` of the run's logger when it writes into ``<save_dir>/<name>/<version>``
    (TensorBoardLogger, CSVLogger), else None."""
    logger = config.get("trainer", {}).get("logger")
    if not hasattr(logger, "get") or logger.get("init_args") is None:
        return None
    init_args = logger.get("init_args")
    return init_args if "save_dir" in init_args and "version" in init_args else None


def _run_of(checkpoint: Path) -> Path | None:
    """The run directory of a checkpoint kept in ``<run>/checkpoints/``, or None; spelled as
    the checkpoint's path was (relative stays relative) when that names the run's parents."""
    if len(checkpoint.parts) < 5:  # <save_dir>/<name>/<run>/checkpoints/<file>
        checkpoint = Path(os.path.abspath(checkpoint))
    folder = checkpoint.parent
    return folder.parent if folder.name == "checkpoints" else None


def _logger_run(logger) -> Path | None:
    """The run directory a logger with an explicit ``version`` writes into, or None."""
    if logger is None or logger.get("version") is None or not logger.get("save_dir"):
        return None
    return (
        Path(logger["save_dir"]) / (logger.get("name") or "") / version_directory(logger["version"])
    )


def _same_directory(a: Path, b: Path | None) -> bool:
    return b is not None and os.path.abspath(a) == os.path.abspath(b)


def _purge_later_events(trainer: pl.Trainer, checkpoint: dict | None) -> None:
    """A resumed run redoes the steps after its checkpoint: mark TensorBoard's events of those
    steps, written by the interrupted run, as replaced (a ``purge_step``), so that curves do not
    show them twice."""
    from pytorch_lightning.loggers import TensorBoardLogger

    loggers = [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
    if not loggers or checkpoint is None:
        return
    step = _logged_step(checkpoint)
    from torch.utils.tensorboard import SummaryWriter

    for logger in loggers:
        SummaryWriter(log_dir=logger.log_dir, purge_step=step).close()


def _logged_step(checkpoint: dict) -> int:
    """The first step a run resumed from ``checkpoint`` logs: its optimizer step count (the
    interrupted run's batches up to it logged at steps ``0 .. global_step - 1``)."""
    return int(checkpoint.get("global_step", 0))


def _first_missing(path: Path) -> Path | None:
    """The outermost of ``path`` and its parents that does not exist yet (what a command
    writing into ``path`` creates), or None."""
    if path.exists():
        return None
    while not path.parent.exists():
        path = path.parent
    return path


def _remove_created_run(session: Session) -> None:
    """After a failure, remove what this command created of its run directory, unless it has
    trained (steps done or checkpoints written: curves and checkpoints to keep)."""
    created = session.created_run
    trainer = session.trainer
    if created is None or not created.is_dir():
        return
    trained = session.args[0] == "fit" and trainer is not None and trainer.global_step > 0
    if trained or any(created.rglob("*.ckpt")):
        return
    shutil.rmtree(created, ignore_errors=True)


def _close_process_group() -> None:
    """End a DDP run's process group once every process has finished.

    Lightning destroys only NCCL groups at exit; a gloo group left to interpreter shutdown can
    abort the process (``terminate called without an active exception``, exit status -6) after
    the run itself succeeded, when gloo's worker threads are torn down with the interpreter.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()  # no process closes its connections while another still uses them
        dist.destroy_process_group()


class _NoAdvertisements(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).lstrip().startswith(QUIET_PREFIXES)


def _quiet_lightning() -> None:
    """Lightning's version warnings about its own internals, and its advertisements, off."""
    # Lightning 2.6 on torch >= 2.10 warns about its own pytree use at every step: not actionable.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    # test/predict from a fit checkpoint: the fit-only checkpoint callbacks are not needed.
    warnings.filterwarnings("ignore", message=r".*callbacks used to create the checkpoint")
    for name in ("pytorch_lightning.utilities.rank_zero", "lightning_fabric.utilities.rank_zero"):
        log = logging.getLogger(name)
        if not any(isinstance(f, _NoAdvertisements) for f in log.filters):
            log.addFilter(_NoAdvertisements())
