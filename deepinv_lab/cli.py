"""The ``deepinv-lab`` command.

``deepinv-lab fit|validate|test|predict --config X.json`` runs Lightning through LightningCLI and
jsonargparse (:mod:`deepinv_lab.training.cli`): the config's ``model`` is a ``ReconModule`` (or
a subclass) whose ``recon`` and its blocks are ``class_path``/``init_args`` entries, ``data`` a
LightningDataModule (the built-in simulated brain MRI when the config names none), ``trainer``
the Lightning Trainer's arguments. Any key can be overridden on the command line
(``--trainer.max_epochs 3``). ``grid``, ``collect``, ``scaling``, ``prune``, ``convert``
(:mod:`deepinv_lab.io.convert`), ``reconstruct`` (:mod:`deepinv_lab.inference`) and ``export``
(:mod:`deepinv_lab.export`) are their own packages' commands.

One error boundary serves every command: a mistake in what the user gave (a
:class:`~deepinv_lab.errors.UserError`, a parser error of jsonargparse, a Lightning
``MisconfigurationException``) is one line on stderr and exit status 2; anything else is a bug
or an environment failure and keeps its traceback. ``DEEPINV_LAB_DEBUG=1`` shows the traceback
of user errors too.

Lightning is imported only when a Lightning subcommand runs, so ``deepinv-lab --help`` is instant.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from deepinv_lab.errors import UserError

LIGHTNING_SUBCOMMANDS = ("fit", "validate", "test", "predict")
GRID_SUBCOMMANDS = ("grid", "collect", "scaling")
PRUNE_SUBCOMMAND = "prune"
#: commands on the user's own files: raw data conversion, inference, model export
FILE_SUBCOMMANDS = ("convert", "reconstruct", "export")
DEBUG_ENV = "DEEPINV_LAB_DEBUG"

USAGE = """usage: deepinv-lab {fit,validate,test,predict} --config CONFIG.json [--key value ...]
       deepinv-lab {validate,test,predict} --ckpt_path CKPT [--key value ...]
       deepinv-lab grid --config CONFIG.json --grid GRID.json [--out DIR] [--dry-run] [--index I]
       deepinv-lab {collect,scaling} DIR
       deepinv-lab prune --config CONFIG.json --ckpt_path TRAINED.ckpt --prune.ratio R [...]
       deepinv-lab convert --input RAW.h5|DIR --output DIR
       deepinv-lab reconstruct --ckpt_path CKPT --input FILE|DIR --output DIR [--format ...]
       deepinv-lab export --ckpt_path CKPT --output FILE [--format torch_export|onnx]

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
  convert    ISMRMRD raw data (2D Cartesian) to fastMRI HDF5 files, for training and evaluation
  reconstruct  run a checkpoint on your own raw k-space, images or volumes; write NIfTI, DICOM,
             PNG, TIFF or fastMRI HDF5
  export     a checkpoint's Recon as a torch.export (.pt2) or ONNX file

Run `deepinv-lab fit --help` for every option, `deepinv-lab fit --config X.json --print_config`
to see a config fully resolved. Set DEEPINV_LAB_DEBUG=1 to see tracebacks of errors.
"""


def config_parser(extra_arguments: Callable | None = None):
    """The parser of ``deepinv-lab fit|validate|test|predict`` (see
    :func:`deepinv_lab.training.cli.config_parser`)."""
    from deepinv_lab.training.cli import config_parser as parser

    return parser(extra_arguments)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    command = args[0]
    if command in GRID_SUBCOMMANDS:
        return _guarded(f"deepinv-lab {command}", lambda: _run_grid(args), args)
    if command == PRUNE_SUBCOMMAND:
        return _guarded("deepinv-lab prune", lambda: _run_prune(args[1:]), args)
    if command in FILE_SUBCOMMANDS:
        return _guarded(f"deepinv-lab {command}", lambda: _run_file_command(args), args)
    if command not in LIGHTNING_SUBCOMMANDS:
        commands = (*LIGHTNING_SUBCOMMANDS, *GRID_SUBCOMMANDS, PRUNE_SUBCOMMAND, *FILE_SUBCOMMANDS)
        print(
            f"deepinv-lab: error: unknown command {command!r}; choose from {', '.join(commands)}",
            file=sys.stderr,
        )
        return 2
    return _guarded("deepinv-lab", lambda: _run_lightning(args), args)


def _guarded(label: str, run: Callable[[], int | None], args: list[str]) -> int:
    """Run a command; a user error becomes one line on stderr and exit status 2."""
    try:
        return run() or 0
    except SystemExit as exit_:  # --help, --print_config, Ctrl-C in Lightning, or argparse
        return _exit_status(exit_)
    except Exception as error:
        message = _user_error_message(error, args)
        if message is None or os.environ.get(DEBUG_ENV):
            raise
        print(f"{label}: error: {message}  (set {DEBUG_ENV}=1 for a traceback)", file=sys.stderr)
        return 2


def _user_error_message(error: Exception, args: list[str]) -> str | None:
    """The one-line message of a user error, or None for any other exception."""
    cause = _user_error_cause(error)
    if cause is not None:
        return _one_line(str(cause))
    from argparse import ArgumentError

    if isinstance(error, ArgumentError):  # a parser's error the command did not describe
        from deepinv_lab.config_errors import condense_parser_error

        return condense_parser_error(str(error))
    if "lightning_fabric" in sys.modules:
        from lightning_fabric.utilities.exceptions import MisconfigurationException

        if isinstance(error, MisconfigurationException):  # Lightning's own "you configured"
            return _one_line(f"trainer: {error}")
    return None


def _user_error_cause(error: BaseException) -> UserError | None:
    """``error`` if it is a UserError, or the UserError it was raised from: jsonargparse
    re-raises a block constructor's error while it instantiates the config."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, UserError):
            return error
        seen.add(id(error))
        error = error.__cause__
    return None


def _one_line(message: str) -> str:
    """A message on one line: a worker's re-raised error keeps only its own last line."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if len(lines) > 1 and "Original Traceback" in message:
        return lines[-1].split(": ", 1)[-1]
    return " ".join(lines)


def _run_lightning(args: list[str]) -> None:
    from deepinv_lab.config_errors import check_config_files
    from deepinv_lab.training.cli import run

    check_config_files(args)
    run(args)


def _exit_status(exit_: SystemExit) -> int:
    """The exit status of a parser that exited (``--help``: 0; an error it printed: 2)."""
    return int(exit_.code or 0) if not isinstance(exit_.code, str) else 2


def _run_grid(args: list[str]) -> int:
    from deepinv_lab.grid import commands

    command = args[0]
    if command == "grid":
        return commands.grid_command(args[1:], config_parser)
    if command == "collect":
        return commands.collect_command(args[1:])
    return commands.scaling_command(args[1:])


def _run_prune(args: list[str]) -> int:
    from deepinv_lab.pruning.command import prune_command

    return prune_command(args, config_parser)


def _run_file_command(args: list[str]) -> int:
    command = args[0]
    if command == "convert":
        from deepinv_lab.io.convert import convert_command

        return convert_command(args[1:])
    if command == "reconstruct":
        from deepinv_lab.inference.command import reconstruct_command

        return reconstruct_command(args[1:])
    from deepinv_lab.export.command import export_command

    return export_command(args[1:])


if __name__ == "__main__":
    sys.exit(main())
