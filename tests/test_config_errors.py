"""One-line messages for bad configs and command lines: real bad command lines and config files
are parsed by the real ``deepinv-lab`` parser, and the one line must name the key (as it is
typed) or the file, say what is expected, and carry none of jsonargparse's internals."""

from __future__ import annotations

import json
from argparse import ArgumentError
from collections.abc import Callable
from pathlib import Path

import pytest

from deepinv_lab.config_errors import (
    check_config_files,
    condense_parser_error,
    config_file_paths,
    describe_parser_error,
)
from deepinv_lab.errors import UserError

VARNET_CONFIG = Path(__file__).parents[1] / "configs" / "varnet.json"
INTERNALS = ("NestedArg", "Subtypes", "<class", "Parser key", "Given value")


@pytest.fixture(scope="module")
def parser():
    from deepinv_lab.cli import config_parser

    return config_parser()


def write_config(directory: Path, edit: Callable[[dict], None], name: str = "bad.json") -> str:
    """The VarNet example config, changed by ``edit``, written to ``directory/name``."""
    config = json.loads(VARNET_CONFIG.read_text())
    edit(config)
    path = directory / name
    path.write_text(json.dumps(config, indent=2))
    return str(path)


def describe(parser, args: list[str]) -> str:
    """The line for the error that parsing ``args`` raises, checked to be one clean line."""
    with pytest.raises(ArgumentError) as caught:
        parser.parse_args(args)
    message = describe_parser_error(caught.value, parser, args)
    assert "\n" not in message
    assert not [internal for internal in INTERNALS if internal in message], message
    return message


def fit(*options: str) -> list[str]:
    return ["fit", "--config", str(VARNET_CONFIG), *options]


# --- wrong types --------------------------------------------------------------------------------


def test_list_argument_given_a_number_on_the_command_line(parser):
    message = describe(parser, fit("--data.init_args.accelerations", "4"))
    assert message == "data.init_args.accelerations: expected a list of int (e.g. [4]), got 4"


def test_list_argument_given_a_number_in_a_config_file(parser, tmp_path):
    def edit(config):
        config["data"]["init_args"]["accelerations"] = 4

    path = write_config(tmp_path, edit)
    message = describe(parser, ["fit", "--config", path])
    assert (
        message == f"{path}: data.init_args.accelerations: expected a list of int (e.g. [4]), got 4"
    )


def test_wrong_type_of_a_recon_argument(parser):
    message = describe(parser, fit("--model.init_args.recon.init_args.num_cascades", "abc"))
    assert message == "model.init_args.recon.init_args.num_cascades: expected an int, got abc"


def test_wrong_type_of_a_trainer_argument(parser):
    message = describe(parser, fit("--trainer.max_epochs", "abc"))
    assert message == "trainer.max_epochs: expected an int or null, got abc"


def test_wrong_type_of_an_optimizer_argument(parser):
    message = describe(parser, fit("--model.init_args.optimizer.init_args.lr", "abc"))
    assert message.startswith("model.init_args.optimizer.init_args.lr: expected a float")
    assert message.endswith("got abc")


# --- unknown keys -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [["--trainer.max_epochz", "3"], ["--trainer.max_epoch", "3"], ["--trainer.max_epochz=3"]],
    ids=["misspelt", "prefix", "equals"],
)
def test_unknown_option_on_the_command_line_suggests_the_closest(parser, options):
    message = describe(parser, fit(*options))
    typed = options[0].partition("=")[0]
    assert message == f"unrecognized option {typed} (did you mean --trainer.max_epochs?)"


def test_unknown_top_level_option_keeps_the_rest_of_the_key(parser):
    message = describe(parser, fit("--modle.init_args.loss", "l1"))
    assert "--modle.init_args.loss" in message
    assert "did you mean --model.init_args.loss?" in message


def test_unknown_recon_argument_on_the_command_line(parser):
    message = describe(parser, fit("--model.init_args.recon.init_args.chanz", "3"))
    assert message == (
        "model.init_args.recon.init_args.chanz is not an argument of "
        "deepinv_lab.recons.varnet.VarNet (did you mean chans?)"
    )


def test_misspelt_init_args_on_the_command_line(parser):
    message = describe(parser, fit("--model.init_argz.loss", "l1"))
    assert message.endswith("(did you mean --model.init_args.loss?)")


def test_unknown_trainer_key_in_a_config_file_names_the_file(parser, tmp_path):
    path = write_config(tmp_path, lambda config: config["trainer"].update(max_epochz=3))
    message = describe(parser, ["test", "--config", path])
    assert message == f"{path}: trainer.max_epochz is not a key (did you mean trainer.max_epochs?)"


def test_unknown_top_level_key_in_a_config_file(parser, tmp_path):
    path = write_config(tmp_path, lambda config: config.update(trainr=config.pop("trainer")))
    message = describe(parser, ["fit", "--config", path])
    assert message == f"{path}: trainr is not a key (did you mean trainer?)"


def test_unknown_recon_argument_in_a_config_file_names_the_file(parser, tmp_path):
    def edit(config):
        config["model"]["init_args"]["recon"]["init_args"]["chanz"] = 3

    path = write_config(tmp_path, edit)
    message = describe(parser, ["test", "--config", path])
    assert message.startswith(f"{path}: model.init_args.recon.init_args.chanz is not an argument")
    assert message.endswith("(did you mean chans?)")


def test_unknown_callback_argument_names_the_list_item(parser, tmp_path):
    def edit(config):
        config["trainer"]["callbacks"][0]["init_args"]["monitr"] = "val/psnr"

    path = write_config(tmp_path, edit)
    message = describe(parser, ["fit", "--config", path])
    assert message.startswith(f"{path}: trainer.callbacks[0].init_args.monitr is not an argument")
    assert message.endswith("(did you mean monitor?)")


def test_data_module_arguments_passed_on_as_kwargs_are_suggested(parser):
    message = describe(parser, fit("--data.init_args.accelerationz", "4"))
    assert message.startswith("data.init_args.accelerationz is not an argument")
    assert message.endswith("(did you mean accelerations?)")


# --- unknown classes ----------------------------------------------------------------------------


def test_unknown_class_path_is_named(parser):
    message = describe(
        parser, fit("--model.init_args.recon.class_path", "deepinv_lab.recons.NoSuchRecon")
    )
    assert message.startswith("model.init_args.recon.class_path: no class NoSuchRecon")
    assert "deepinv_lab.recons" in message and "VarNet" in message  # the classes there


def test_misspelt_class_path_suggests_the_closest_class_of_its_module(parser):
    message = describe(
        parser, fit("--model.init_args.recon.class_path", "deepinv_lab.recons.VarNat")
    )
    assert message.endswith("(did you mean deepinv_lab.recons.VarNet?)")


def test_misspelt_short_class_name_suggests_a_known_subclass(parser):
    message = describe(parser, fit("--model.init_args.recon.class_path", "VarNett"))
    assert message == "model.init_args.recon.class_path: no class VarNett (did you mean VarNet?)"


def test_class_of_the_wrong_kind(parser):
    message = describe(parser, fit("--model.init_args.recon.class_path", "torch.nn.Linear"))
    assert message.startswith("model.init_args.recon.class_path: torch.nn.Linear is not")
    assert "Recon" in message


# --- config files -------------------------------------------------------------------------------


def test_json_syntax_error_names_the_file_line_and_column(parser, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{\n  "trainer": {\n    "max_epochs": 3\n    "devices": 1\n  }\n}\n')
    expected = f"{path}: not valid JSON: Expecting ',' delimiter at line 4 column 5"
    with pytest.raises(UserError, match="^" + expected.replace("(", r"\(")):
        check_config_files(["fit", "--config", str(path)])
    assert describe(parser, ["fit", "--config", str(path)]) == expected


def test_yaml_syntax_error_names_the_file_line_and_column(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("trainer:\n  max_epochs: 3\n devices: 1\n")
    with pytest.raises(UserError) as caught:
        check_config_files(["fit", "-c", str(path)])
    message = str(caught.value)
    assert message.startswith(f"{path}: not valid YAML: ") and "line 3 column 2" in message


@pytest.mark.parametrize(
    ("name", "text", "kind"),
    [("list.json", "[1, 2]", "a list"), ("empty.yaml", "", "nothing"), ("s.yml", "x", "a string")],
)
def test_config_whose_top_level_is_not_an_object(parser, tmp_path, name, text, kind):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(UserError, match="the top level must be an object") as caught:
        check_config_files(["fit", f"--config={path}"])
    assert str(caught.value).startswith(f"{path}: ") and kind in str(caught.value)
    if name == "list.json":  # jsonargparse's own refusal is described the same way
        assert describe(parser, ["fit", "--config", str(path)]) == str(caught.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(UserError, match="config file not found"):
        check_config_files(["fit", "--config", str(tmp_path / "none.json")])


def test_good_config_files_pass():
    check_config_files(["fit", "--config", str(VARNET_CONFIG), "-c", str(VARNET_CONFIG)])


def test_config_file_paths_in_every_spelling():
    args = ["fit", "--config", "a.json", "-c", "b.yaml", "--config=c.json", "--trainer.x", "1"]
    assert config_file_paths(args) == ["a.json", "b.yaml", "c.json"]


# --- fallback -----------------------------------------------------------------------------------


def test_a_message_it_cannot_follow_is_condensed(parser):
    message = 'Parser key "trainer.foo":\n  Something new\n  Given value: 3'
    error = ArgumentError(None, message)
    described = describe_parser_error(error, parser, ["fit", "--trainer.foo", "3"])
    assert described == condense_parser_error(message) == "trainer.foo: Something new"


def test_describing_never_raises(parser):
    error = ArgumentError(None, "unrecognized arguments: --trainer.max_epochz 3")
    assert "--trainer.max_epochz" in describe_parser_error(error, object(), [])
    assert describe_parser_error(ValueError("a\nb"), None, ["fit", "--config"]) == "a; b"
