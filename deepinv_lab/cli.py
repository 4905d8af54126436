"""The ``deepinv-lab`` command.

``deepinv-lab fit|validate|test|predict --config X.json`` runs Lightning through LightningCLI and
jsonargparse: the config's ``model`` is a ``ReconModule`` (or a subclass) whose ``recon`` and its
blocks are ``class_path``/``init_args`` entries, ``data`` a LightningDataModule (the built-in
simulated brain MRI when the config names none), ``trainer`` the Lightning Trainer's arguments.
Any key can be overridden on the command line (``--trainer.max_epochs 3``).

Lightning is imported only when a Lightning subcommand runs, so ``deepinv-lab --help`` is instant.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from deepinv_lab.config_errors import condense_parser_error

LIGHTNING_SUBCOMMANDS = ("fit", "validate", "test", "predict")
GRID_SUBCOMMANDS = ("grid", "collect", "scaling")
PRUNE_SUBCOMMAND = "prune"
DEFAULT_DATA = "deepinv_lab.data.datamodule.SimulatedBrainMRIDataModule"
DEBUG_ENV = "DEEPINV_LAB_DEBUG"
DEFAULT_CHECKPOINT_STEPS = 1000

USAGE = """usage: deepinv-lab {fit,validate,test,predict} --config CONFIG.json [--key value ...]
       deepinv-lab grid --config CONFIG.json --grid GRID.json [--out DIR] [--dry-run] [--index I]
       deepinv-lab {collect,scaling} DIR
       deepinv-lab prune --config CONFIG.json --ckpt_path TRAINED.ckpt --prune.ratio R [...]

Deep-learning inverse problems in imaging, driven by JSON configs.

commands:
  fit        train a Recon (on the built-in simulated brain MRI when the config names no data)
  validate   evaluate on the validation set
  test       evaluate on the test set
  predict    run the Recon on the prediction set
  grid       one run per point of a grid of config values (sequential, per GPU, or SLURM array)
  collect    the table of a grid's runs: hyperparameters, validation and test metrics (CSV)
  scaling    metric vs training-set size per network size, power-law fits (PNG)
  prune      structured pruning of a trained Recon's priors, fine-tuning, speed/quality report

Run `deepinv-lab fit --help` for every option, `deepinv-lab fit --config X.json --print_config`
to see a config fully resolved. Set DEEPINV_LAB_DEBUG=1 to see tracebacks of errors.
"""


class UserError(Exception):
    """An error in what the user gave (config, file, shapes): reported in one line."""


class _ParserReady(Exception):  # noqa: N818 - a signal carrying the parser, not an error
    def __init__(self, parser) -> None:
        super().__init__("parser ready")
        self.parser = parser


def config_parser():
    """The parser of ``deepinv-lab fit|validate|test|predict``, without running anything: what
    the grid uses to resolve and check each run's config exactly as ``fit`` would."""
    try:
        _build_cli(["fit"], parse_only=True)
    except _ParserReady as ready:
        return ready.parser
    raise RuntimeError("LightningCLI did not reach parse_arguments")


def _build_cli(args: list[str] | None, parse_only: bool = False):
    import warnings

    # Lightning 2.6 on torch >= 2.10 warns about its own pytree use at every step: not actionable.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    # test/predict from a fit checkpoint: the fit-only checkpoint callbacks are not needed.
    warnings.filterwarnings("ignore", message=r".*callbacks used to create the checkpoint")
    import pytorch_lightning as pl
    from pytorch_lightning.cli import LightningCLI

    # Importing the block packages makes their classes resolvable by short name in configs.
    import deepinv_lab.data.datamodule  # noqa: F401
    import deepinv_lab.data.fastmri_datamodule  # noqa: F401
    import deepinv_lab.data.folder_datamodules  # noqa: F401
    import deepinv_lab.data.image_datamodules  # noqa: F401
    import deepinv_lab.recons  # noqa: F401
    from deepinv_lab.training.callbacks import ReconstructionWriter
    from deepinv_lab.training.module import ReconModule

    class DeepInvLabCLI(LightningCLI):
        def parse_arguments(self, parser, args) -> None:
            if parse_only:
                raise _ParserReady(parser)
            super().parse_arguments(parser, args)

        def add_arguments_to_parser(self, parser) -> None:
            parser.set_defaults({"data": {"class_path": DEFAULT_DATA}})
            parser.add_argument(
                "--checkpoint_every_n_steps",
                type=int,
                default=DEFAULT_CHECKPOINT_STEPS,
                help="fit: also checkpoint (last.ckpt) every N optimizer steps; 0 = only at "
                "epoch ends",
            )

        def before_instantiate_classes(self) -> None:
            config = self.config.get(str(self.subcommand), self.config)
            if self.subcommand == "fit" and config.get("ckpt_path") == "last":
                _reuse_run_directory(config)
            elif self.subcommand == "fit" and config.get("ckpt_path"):
                _require_training_state(str(config.get("ckpt_path")))

        def instantiate_trainer(self, **kwargs):
            trainer_config = self._get(self.config_init, "trainer", default={})
            present = trainer_config.get("callbacks") or []
            present = list(present) if isinstance(present, list) else [present]
            config = self.config.get(str(self.subcommand), self.config)
            extra = _default_callbacks(
                present,
                self.subcommand,
                config.get("checkpoint_every_n_steps", DEFAULT_CHECKPOINT_STEPS),
                config.as_dict() if hasattr(config, "as_dict") else dict(config),
                trainer_config.get("enable_checkpointing", True) is not False,
            )
            return super().instantiate_trainer(callbacks=present + extra, **kwargs)

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
            print(f"\ndeepinv-lab {self.config.subcommand} finished in {elapsed:.0f} s")
            if shown:
                print(f"  {stage} metrics: " + "  ".join(shown))
            if trainer.logger is not None and log_dir:
                print(f"  logs: {log_dir}  (view: tensorboard --logdir {trainer.logger.save_dir})")
            checkpoint = trainer.checkpoint_callback
            if self.config.subcommand == "fit" and checkpoint is not None:
                best = getattr(checkpoint, "best_model_path", "") or checkpoint.last_model_path
                print(
                    f"  checkpoints: {checkpoint.dirpath}" + (f"  (best: {best})" if best else "")
                )

        def before_fit(self) -> None:
            self._started = time.perf_counter()

        before_validate = before_test = before_predict = before_fit

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
                written = write_test_metrics(results, directory, self.trainer.callback_metrics)
                print(f"  per-volume metrics: {written[0]} and {written[1].name}")

        def after_predict(self) -> None:
            self._summary("predict")
            writers = [c for c in self.trainer.callbacks if isinstance(c, ReconstructionWriter)]
            for writer in writers:
                if writer.written is not None and self.trainer.is_global_zero:
                    print(f"  reconstructions: {writer.written}")

    return DeepInvLabCLI(
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
            **{name: {"allow_abbrev": False} for name in LIGHTNING_SUBCOMMANDS},
        },
        auto_configure_optimizers=False,
    )


def _default_callbacks(
    present: list, subcommand: str, every_n_steps: int, config: dict, checkpointing: bool
) -> list:
    """The callbacks every run gets unless the config already has one of the type: image grids,
    speed, hyperparameters with final metrics, the learning rate, fastMRI-format predictions, the
    random generators' states in checkpoints,
    and checkpoints every ``every_n_steps`` steps (``last-step.ckpt``) and at every epoch end
    (``last.ckpt``, unless the config's own ModelCheckpoint does that)."""
    from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint

    from deepinv_lab.training.callbacks import (
        HParamsLogger,
        ImageGridLogger,
        ReconstructionWriter,
        RNGState,
        Throughput,
        flatten_config,
    )

    def has(kind: type) -> bool:
        return any(isinstance(callback, kind) for callback in present)

    extra = [
        kind()
        for kind in (ImageGridLogger, ReconstructionWriter, Throughput, RNGState)
        if not has(kind)
    ]
    if not has(HParamsLogger):
        params = {k: v for k, v in config.items() if k not in ("config", "ckpt_path")}
        extra.append(HParamsLogger(flatten_config(params)))
    if subcommand == "fit" and not has(LearningRateMonitor):
        extra.append(LearningRateMonitor())
    if subcommand == "fit" and checkpointing:
        if every_n_steps < 0:
            raise UserError(f"checkpoint_every_n_steps must be >= 0, got {every_n_steps}")
        if every_n_steps:
            steps = ModelCheckpoint(every_n_train_steps=every_n_steps, save_top_k=0, save_last=True)
            # its own name: epoch-end checkpoints write last.ckpt; --ckpt_path last takes the newer
            steps.CHECKPOINT_NAME_LAST = "last-step"
            extra.append(steps)
        if not has(ModelCheckpoint):
            extra.append(ModelCheckpoint(save_last=True, filename="epoch-{epoch}"))
    return extra


def _reuse_run_directory(config) -> None:
    """``fit --ckpt_path last``: log into the run directory that holds the newest ``last.ckpt``
    (TensorBoard's ``version``), so that the resumed run finds its checkpoints and continues its
    curves instead of starting ``version_<n+1>``."""
    logger = config.get("trainer", {}).get("logger")
    if not hasattr(logger, "get") or "TensorBoardLogger" not in str(logger.get("class_path")):
        return
    init_args = logger.get("init_args")
    if init_args is None or init_args.get("version") is not None:
        return
    root = Path(init_args.get("save_dir") or "lightning_logs") / (init_args.get("name") or "")
    candidates = sorted(root.glob("*/checkpoints/last*.ckpt"), key=lambda p: p.stat().st_mtime)
    if candidates:
        init_args["version"] = candidates[-1].parent.parent.name


def _require_training_state(path: str) -> None:
    """``fit --ckpt_path`` resumes training, which needs the optimizer's state: a weights-only
    checkpoint (a ``deepinv-lab prune`` output) is started from with ``init_from`` instead."""
    import torch

    if not os.path.isfile(path):
        raise UserError(f"checkpoint not found: {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", mmap=True, weights_only=False)
    except Exception:  # noqa: BLE001 - Lightning reports unreadable files itself
        return
    if isinstance(checkpoint, dict) and "optimizer_states" not in checkpoint:
        raise UserError(
            f"{path} holds weights only (no optimizer state to resume; e.g. a `deepinv-lab "
            f"prune` output): to train from it, use --model.init_args.init_from {path}"
        )


def write_test_metrics(results: list[dict], directory: Path, summary: dict) -> tuple[Path, Path]:
    """``test_metrics.csv`` (one row per volume) and ``test_metrics.json`` (the per-volume rows
    and the mean of each ``test/*`` metric) in ``directory``."""
    import csv
    import json

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
    json_path.write_text(json.dumps({"mean": means, "volumes": results}, indent=2) + "\n")
    return csv_path, json_path


def _check_config_files(args: list[str]) -> None:
    for flag, value in zip(args, args[1:], strict=False):
        if flag in ("--config", "-c") and not os.path.isfile(value):
            raise UserError(f"config file not found: {value}")


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if args[0] in GRID_SUBCOMMANDS:
        return _run_grid(args)
    if args[0] == PRUNE_SUBCOMMAND:
        return _run_prune(args[1:])
    if args[0] not in LIGHTNING_SUBCOMMANDS:
        commands = (*LIGHTNING_SUBCOMMANDS, *GRID_SUBCOMMANDS, PRUNE_SUBCOMMAND)
        print(
            f"deepinv-lab: error: unknown command {args[0]!r}; choose from {', '.join(commands)}",
            file=sys.stderr,
        )
        return 2
    # LightningCLI warns when given args while sys.argv also has some (e.g. under pytest):
    # pass None from the console, and hide the caller's sys.argv when called with arguments.
    cli_args = None if argv is None else args
    saved_argv = sys.argv
    if argv is not None:
        sys.argv = sys.argv[:1]
    try:
        return _run(args, cli_args)
    finally:
        sys.argv = saved_argv


def _run(args: list[str], cli_args: list[str] | None) -> int:
    """Run a Lightning subcommand; user errors become one line on stderr and exit code 2."""
    if os.environ.get(DEBUG_ENV):
        _run_lightning(args, cli_args)
        return 0
    try:
        _run_lightning(args, cli_args)
    except SystemExit as exit_:  # --help, --print_config, or an argparse error already printed
        return _exit_status(exit_)
    except Exception as error:  # noqa: BLE001 - one line for the user, the traceback behind a flag
        from jsonargparse import ArgumentError

        user_errors = (UserError, ArgumentError, ValueError, TypeError, FileNotFoundError, KeyError)
        if not isinstance(error, user_errors):
            raise
        print(
            f"deepinv-lab: error: {condense_parser_error(str(error))}"
            f"  (set {DEBUG_ENV}=1 for a traceback)",
            file=sys.stderr,
        )
        return 2
    return 0


def _run_lightning(args: list[str], cli_args: list[str] | None) -> None:
    _check_config_files(args)
    _build_cli(cli_args)
    _close_process_group()


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


def _exit_status(exit_: SystemExit) -> int:
    """The exit status of a parser that exited (``--help``: 0; an error it printed: 2)."""
    return int(exit_.code or 0) if not isinstance(exit_.code, str) else 2


def _run_grid(args: list[str]) -> int:
    """``grid``, ``collect``, ``scaling``: bad grids and tables become one line and exit code 2."""
    from deepinv_lab.grid import commands

    command = args[0]
    try:
        if command == "grid":
            return commands.grid_command(args[1:], config_parser)
        if command == "collect":
            return commands.collect_command(args[1:])
        return commands.scaling_command(args[1:])
    except SystemExit as exit_:  # argparse printed the problem (or --help)
        return _exit_status(exit_)
    except (ValueError, FileNotFoundError) as error:
        if os.environ.get(DEBUG_ENV):
            raise
        print(f"deepinv-lab {command}: error: {error}", file=sys.stderr)
        return 2


def _run_prune(args: list[str]) -> int:
    """``prune``: bad options, configs and checkpoints become one line and exit code 2."""
    from deepinv_lab.pruning.command import prune_command

    try:
        return prune_command(args, config_parser)
    except SystemExit as exit_:  # argparse printed the problem (or --help)
        return _exit_status(exit_)
    except (ValueError, FileNotFoundError) as error:  # PruningError is a ValueError
        if os.environ.get(DEBUG_ENV):
            raise
        print(f"deepinv-lab prune: error: {error}  (set {DEBUG_ENV}=1 for a traceback)",
              file=sys.stderr)  # fmt: skip
        return 2


if __name__ == "__main__":
    sys.exit(main())
