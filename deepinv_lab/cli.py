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
import re
import sys
import time

LIGHTNING_SUBCOMMANDS = ("fit", "validate", "test", "predict")
DEFAULT_DATA = "deepinv_lab.data.datamodule.SimulatedBrainMRIDataModule"
DEBUG_ENV = "DEEPINV_LAB_DEBUG"

USAGE = """usage: deepinv-lab {fit,validate,test,predict} --config CONFIG.json [--key value ...]

Deep-learning inverse problems in imaging, driven by JSON configs.

commands:
  fit        train a Recon (on the built-in simulated brain MRI when the config names no data)
  validate   evaluate on the validation set
  test       evaluate on the test set
  predict    run the Recon on the prediction set

Run `deepinv-lab fit --help` for every option, `deepinv-lab fit --config X.json --print_config`
to see a config fully resolved. Set DEEPINV_LAB_DEBUG=1 to see tracebacks of errors.
"""


class UserError(Exception):
    """An error in what the user gave (config, file, shapes): reported in one line."""


_NOISE = ("Does not validate against any of the", "Subtypes", "Errors", "Given value", "Expected a")


def _first_line_error(message: str) -> str:
    """Condense jsonargparse's nested, multi-line messages into one line that names the key.

    ``Parser key "model": ... Parser key "recon": Problem with given class_path 'X': Option 'y'
    is not accepted`` becomes ``model.recon (X): Option 'y' is not accepted``.
    """
    message = str(message)
    keys = re.findall(r'Parser key "([^"]+)"', message)
    lines = []
    for line in message.splitlines():
        line = re.sub(r'Parser key "[^"]+":?', "", line).strip(" -:;")
        if line and not line.startswith(_NOISE):
            lines.append(line)
    class_paths = [m for line in lines for m in re.findall(r"class_path '([^']+)'", line)]
    details = [line for line in lines if not line.startswith("Problem with given class_path")]
    if not details:  # nothing but noise: fall back to the rejected value and the expected types
        noise = message.splitlines()
        details = [line for line in noise if "Given value" in line][-1:]
        details += [line for line in noise if "Subtypes" in line][-1:]
        class_paths = []
    where = ".".join(keys)
    if class_paths:
        where = f"{where} ({class_paths[-1]})" if where else class_paths[-1]
    text = "; ".join(dict.fromkeys(line.strip() for line in details))
    return (f"{where}: {text}" if where else text)[:800]


def _build_cli(args: list[str] | None):
    import warnings

    # Lightning 2.6 on torch >= 2.10 warns about its own pytree use at every step: not actionable.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    import pytorch_lightning as pl
    from pytorch_lightning.cli import LightningCLI

    # Importing the block packages makes their classes resolvable by short name in configs.
    import deepinv_lab.data.datamodule  # noqa: F401
    import deepinv_lab.recons  # noqa: F401
    from deepinv_lab.training.callbacks import ImageGridLogger, ReconstructionWriter
    from deepinv_lab.training.module import ReconModule

    class DeepInvLabCLI(LightningCLI):
        def add_arguments_to_parser(self, parser) -> None:
            parser.set_defaults({"data": {"class_path": DEFAULT_DATA}})

        def _summary(self, stage: str) -> None:
            trainer = self.trainer
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
            if trainer.logger is not None and trainer.log_dir:
                print(
                    f"  logs: {trainer.log_dir}  "
                    f"(view: tensorboard --logdir {trainer.logger.save_dir})"
                )
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
            "callbacks": [ImageGridLogger(), ReconstructionWriter()],
        },
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"exit_on_error": False},
        auto_configure_optimizers=False,
    )


def _check_config_files(args: list[str]) -> None:
    for flag, value in zip(args, args[1:], strict=False):
        if flag in ("--config", "-c") and not os.path.isfile(value):
            raise UserError(f"config file not found: {value}")


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if args[0] not in LIGHTNING_SUBCOMMANDS:
        print(
            f"deepinv-lab: error: unknown command {args[0]!r}; choose from "
            f"{', '.join(LIGHTNING_SUBCOMMANDS)}",
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
        _check_config_files(args)
        _build_cli(cli_args)
        return 0
    try:
        _check_config_files(args)
        _build_cli(cli_args)
    except SystemExit as exit_:  # --help, --print_config, or an argparse error already printed
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else 2
    except Exception as error:  # noqa: BLE001 - one line for the user, the traceback behind a flag
        from jsonargparse import ArgumentError

        user_errors = (UserError, ArgumentError, ValueError, TypeError, FileNotFoundError, KeyError)
        if not isinstance(error, user_errors):
            raise
        print(
            f"deepinv-lab: error: {_first_line_error(str(error))}"
            f"  (set {DEBUG_ENV}=1 for a traceback)",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
