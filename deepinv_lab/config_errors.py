"""One-line messages for mistakes in config files and command lines.

jsonargparse reports a bad value deep in a config as a nested, multi-line message (every level of
the config re-raises the error of the level below it, and a union type lists why each of its
members refused the value). :func:`describe_parser_error` follows that chain of exceptions to
the innermost problem and the key it sits under, asks the parser what that key accepts, and
writes one line: the key as the user types it (``model.init_args.recon.init_args.chans``), the
config file it came from, the expected type in words, and a did-you-mean for a misspelt key or
class. :func:`check_config_files` names a config file that is not valid JSON/YAML before
jsonargparse sees it. :func:`condense_parser_error` is the fallback for any other message.
"""

from __future__ import annotations

import collections.abc
import contextlib
import difflib
import functools
import importlib
import inspect
import json
import os
import re
import sys
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from deepinv_lab.discovery import subclasses
from deepinv_lab.errors import UserError

CONFIG_FLAGS = ("--config", "-c")
MAX_MESSAGE = 800
MAX_LISTED = 40  # the valid choices listed when there is no close match; the rest are counted

_NOISE = ("Does not validate against any of the", "Subtypes", "Errors", "Given value", "Expected a")
_PARSER_KEY = re.compile(r'Parser key "([^"]+)"')
_GIVEN_CLASS = re.compile(r"Problem with given class_path '([^']+)'")
_CALLABLE_CLASS = re.compile(r"Got value: Namespace\(class_path='([^']+)'")
_NOT_ACCEPTED = re.compile(r"Option '([^']+)' is not accepted")
_UNRECOGNIZED = re.compile(r"unrecognized arguments: (.*)", re.S)
_SUBCOMMAND_KEY = re.compile(r"Subcommand '[^']+' does not accept option '([^']+)'")
_SHORT_CLASS = re.compile(r"Expected a dot import path string: (\S+)")
_NOT_SUBCLASS = re.compile(r"Import path (\S+) does not correspond to a subclass of (\S+)")
_GOT_VALUE = re.compile(r"Got value: (.*)")
_CLASS_REPR = re.compile(r"<class '([^']+)'>")
_CLASS_BLOCK_KEYS = ("class_path", "init_args", "dict_kwargs")
_LIST_TYPES = (list, tuple, set, frozenset, collections.abc.Sequence, collections.abc.Iterable)
_SIMPLE_NAMES = {int: "int", float: "float", str: "str", bool: "bool"}


def condense_parser_error(message: str) -> str:
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
    return (f"{where}: {text}" if where else text)[:MAX_MESSAGE]


# --- config files -------------------------------------------------------------------------------


def config_file_paths(args: list[str]) -> list[str]:
    """The files given by ``--config FILE``, ``-c FILE`` or ``--config=FILE``, in order."""
    paths = []
    for index, token in enumerate(args):
        if token in CONFIG_FLAGS and index + 1 < len(args):
            paths.append(args[index + 1])
        elif token.startswith("--config="):
            paths.append(token.partition("=")[2])
    return paths


def check_config_files(args: list[str]) -> None:
    """Raise :class:`UserError` naming the first config file of the command line ``args`` that
    is missing, not valid JSON (``.json``) or YAML (any other name), or whose top level is not
    a mapping of keys."""
    for path in config_file_paths(args):
        load_config_file(path)


def load_config_file(path: str) -> dict:
    """The mapping of keys a config file holds; :class:`UserError` naming the file otherwise."""
    import yaml

    if not os.path.isfile(path):
        raise UserError(f"config file not found: {path}")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise UserError(f"{path}: not a text file ({error.reason})") from None
    if path.lower().endswith(".json"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise UserError(
                f"{path}: not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
            ) from None
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise UserError(f"{path}: not valid YAML: {_yaml_problem(error)}") from None
    if not isinstance(data, dict):
        raise UserError(
            f'{path}: the top level must be an object of keys ({{"trainer": ..., "model": ...}}),'
            f" got {_kind_of(data)}"
        )
    return data


def _yaml_problem(error: Exception) -> str:
    problem = getattr(error, "problem", None) or str(error)
    mark = getattr(error, "problem_mark", None)
    where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
    return _one_line(f"{problem}{where}")


def _kind_of(data: Any) -> str:
    if data is None:
        return "nothing (an empty file)"
    if isinstance(data, list):
        return "a list"
    if isinstance(data, str):
        return "a string"
    return f"a {type(data).__name__}"


# --- parser errors ------------------------------------------------------------------------------


def describe_parser_error(error: BaseException, parser: Any, args: list[str]) -> str:
    """One line for an error that ``parser.parse_args(args)`` raised.

    ``parser`` is the top-level parser (:func:`deepinv_lab.cli.config_parser`) and ``args`` the
    command line it parsed, starting with the subcommand. The line names the key as it is typed
    (``model.init_args.recon.init_args.chans``) and the config file it came from, and says what
    is expected: the type in words, or the closest key or class name. A message this function
    cannot follow is condensed by :func:`condense_parser_error`.
    """
    try:
        line = _describe(error, parser, [str(arg) for arg in args])
    except Exception:  # noqa: BLE001 - describing an error must never raise one of its own
        line = None
    return _one_line(line or condense_parser_error(str(error)))


def _describe(error: BaseException, parser: Any, args: list[str]) -> str | None:
    links = _error_chain(error)
    if any(
        str(link).startswith(("Problems parsing config", "Unexpected config")) for link in links
    ):
        try:
            check_config_files(args)
        except UserError as bad_file:
            return str(bad_file)
        return None
    scope = _subcommand_parser(parser, args)
    sources = _Sources(args)
    path = _path_of(links)
    if not path:
        return _describe_top_level(str(links[-1]), scope, sources)
    if path[-1][0] == "class":
        return _describe_class_block(links[-1], path, scope, sources)
    return _describe_value(str(links[-1]), path, scope, sources)


def _describe_top_level(problem: str, scope: Any, sources: _Sources) -> str | None:
    """An unknown option of the command line, or an unknown key of a config file."""
    if match := _UNRECOGNIZED.match(problem):
        return _unrecognized(match.group(1), [], _parser_params(scope))
    if match := _SUBCOMMAND_KEY.match(problem):
        return _unknown_file_key(match.group(1).split("."), _parser_params(scope), sources)
    return None


def _describe_class_block(
    problem: BaseException, path: list[tuple[str, str]], scope: Any, sources: _Sources
) -> str:
    """A problem with a ``class_path``/``init_args`` block: an argument the class does not
    take, a misspelt ``init_args``, a class that does not import."""
    parts, params, _, _ = _walk(path, scope)
    class_path = path[-1][1]
    block = parts[:-1]  # the key that holds class_path and init_args
    text = str(problem)
    if match := _NOT_ACCEPTED.match(text):
        return _unknown_argument(class_path, [*parts, match.group(1)], params, sources)
    if match := _UNRECOGNIZED.match(text):
        accepted = dict.fromkeys([*_CLASS_BLOCK_KEYS, *params])
        accepted.update(dict.fromkeys(f"init_args.{key}" for key in params))
        return _unrecognized(match.group(1), block, accepted)
    if isinstance(problem, (ImportError, AttributeError)):
        base_hint = _walk(path[:-1], scope)[2]
        return _unknown_class_path(class_path, text, [*block, "class_path"], base_hint, sources)
    return _at_key(block, _clean(text), sources)


def _describe_value(
    problem: str, path: list[tuple[str, str]], scope: Any, sources: _Sources
) -> str:
    """A value the key at the end of ``path`` does not accept: a wrong type, or a class name
    that is unknown or of the wrong kind."""
    parts, _, hint, default = _walk(path, scope)
    if match := _SHORT_CLASS.match(problem):
        return _unknown_class_name(match.group(1), parts, hint, sources)
    if match := _NOT_SUBCLASS.match(problem):
        given, base = match.groups()
        choices = _listing(_subclass_names(hint), prefix=f"; subclasses of {base}: ")
        parts = _class_path_key(parts, given, sources)
        return _at_key(parts, f"{given} is not a subclass of {base}{choices}", sources, value=given)
    if problem.startswith(("Expected a", "Does not validate against")):
        return _type_error(parts, hint, default, problem, sources)
    return _at_key(parts, _clean(problem), sources)


def _error_chain(error: BaseException) -> list[BaseException]:
    """The error, the error it was raised from, and so on down to the innermost problem."""
    chain: list[BaseException] = []
    while error is not None and error not in chain and len(chain) < 200:
        chain.append(error)
        error = error.__cause__ or error.__context__
    return chain


def _path_of(links: list[BaseException]) -> list[tuple[str, str]]:
    """``("key", name)`` and ``("class", class_path)`` steps from the top of the config down to
    the innermost problem, read from the first line of each link of the chain."""
    path: list[tuple[str, str]] = []
    for link in links[:-1]:
        text = str(link)
        first = text.split("\n", 1)[0]
        step = None
        if match := _PARSER_KEY.match(first):
            step = ("key", match.group(1))
        elif match := _GIVEN_CLASS.match(first):
            step = ("class", match.group(1))
        elif "expects a function or a callable class" in first:
            if match := _CALLABLE_CLASS.search(text):
                step = ("class", match.group(1))
        if step and (not path or path[-1] != step):
            path.append(step)
    return path


def _subcommand_parser(parser: Any, args: list[str]) -> Any:
    action = getattr(parser, "_subcommands_action", None)
    subparsers = getattr(action, "_name_parser_map", None) or {}
    return subparsers[args[0]] if args and args[0] in subparsers else parser


def _parser_params(parser: Any) -> dict[str, tuple[Any, Any]]:
    """Key -> (type hint, default) for every option of ``parser``."""
    params = {}
    for action in getattr(parser, "_actions", []):
        if action.dest == "help" or action.dest.endswith(".help"):
            continue
        params[action.dest] = (getattr(action, "_typehint", None), action.default)
    return params


@functools.lru_cache(maxsize=64)
def _class_params(class_path: str) -> dict[str, tuple[Any, Any]]:
    """The init arguments jsonargparse accepts for a class (those of its bases too, where it
    passes ``**kwargs`` on), with their type hints and defaults."""
    from jsonargparse import ArgumentParser

    cls = _import_class(class_path)
    if cls is None:
        return {}
    parser = ArgumentParser(exit_on_error=False)
    try:
        parser.add_class_arguments(cls, fail_untyped=False, sub_configs=True)
    except Exception:  # noqa: BLE001 - a class jsonargparse cannot read has no known arguments
        return {}
    return _parser_params(parser)


def _import_class(class_path: str) -> type | None:
    module_name, _, name = class_path.rpartition(".")
    try:
        value = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError):
        return None
    return value if inspect.isclass(value) else None


def _walk(path: list[tuple[str, str]], scope: Any) -> tuple[list[str], dict, Any, Any]:
    """The key parts of ``path`` as typed, the arguments accepted where it ends, and the type
    hint and default of its last key."""
    parts: list[str] = []
    params = _parser_params(scope)
    hint = default = None
    for kind, name in path:
        if kind == "key":
            parts += name.split(".")
            hint, default = params.get(name, (None, None))
            params = {}
        else:
            parts.append("init_args")
            params = _class_params(name)
    return parts, params, hint, default


# --- the kinds of problems ----------------------------------------------------------------------


def _unrecognized(tokens: str, block: list[str], accepted: dict) -> str | None:
    """``unrecognized arguments: --a.b 3``: each unknown option with its closest known one."""
    problems = []
    for token in tokens.split():
        if not token.startswith("-"):
            continue  # the value of an unknown option
        parts = token.lstrip("-").partition("=")[0].split(".")
        typed = "--" + ".".join([*block, *parts])
        unknown = _first_unknown(parts, accepted)
        if unknown is None:
            problems.append(f"unrecognized option {typed}")
            continue
        index, match, siblings = unknown
        if match:
            fixed = ".".join([*block, *parts[:index], match, *parts[index + 1 :]])
            problems.append(f"unrecognized option {typed} (did you mean --{fixed}?)")
        else:
            listed = _listing(siblings, prefix="; keys there: ")
            problems.append(f"unrecognized option {typed}{listed}")
    return "; ".join(problems) or None


def _unknown_file_key(parts: list[str], accepted: dict, sources: _Sources) -> str:
    """A key of a config file that the parser does not have (jsonargparse names its deepest
    key; the problem is the first part that is not known)."""
    unknown = _first_unknown(parts, accepted)
    if unknown is None:
        return _at_key(parts, "is not a key", sources, colon=False)
    index, match, siblings = unknown
    bad = parts[: index + 1]
    hint = (
        f" (did you mean {'.'.join([*parts[:index], match])}?)"
        if match
        else _listing(siblings, prefix=" (keys there: ", suffix=")")
    )
    return _at_key(bad, f"is not a key{hint}", sources, colon=False)


def _unknown_argument(class_path: str, parts: list[str], params: dict, sources: _Sources) -> str:
    name = parts[-1]
    matches = difflib.get_close_matches(name, list(params), n=1, cutoff=0.6)
    hint = (
        f" (did you mean {matches[0]}?)"
        if matches
        else _listing(list(params), prefix=" (its arguments: ", suffix=")")
    )
    return _at_key(parts, f"is not an argument of {class_path}{hint}", sources, colon=False)


def _unknown_class_path(
    class_path: str, problem: str, parts: list[str], base_hint: Any, sources: _Sources
) -> str:
    """A ``class_path`` that does not import: the closest class of the module it names."""
    module_name, _, name = class_path.rpartition(".")
    module = sys.modules.get(module_name)  # imported already when it exists: no new imports
    if module is None:
        return _at_key(parts, f"cannot import {class_path} ({_clean(problem)})", sources)
    bases = tuple(_classes_in(base_hint)) or (object,)
    names = sorted(
        key
        for key, value in vars(module).items()
        if not key.startswith("_")
        and inspect.isclass(value)
        and issubclass(value, bases)
        and value not in bases
    )
    matches = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    hint = (
        f" (did you mean {module_name}.{matches[0]}?)"
        if matches
        else _listing(names, prefix=" (classes there: ", suffix=")")
    )
    return _at_key(parts, f"no class {name} in {module_name}{hint}", sources)


def _unknown_class_name(name: str, parts: list[str], hint: Any, sources: _Sources) -> str:
    """A short class name jsonargparse did not find among the subclasses it knows."""
    names = _subclass_names(hint)
    matches = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    suggestion = (
        f" (did you mean {matches[0]}?)"
        if matches
        else _listing(names, prefix=" (known classes: ", suffix=")")
    )
    parts = _class_path_key(parts, name, sources)
    return _at_key(parts, f"no class {name}{suggestion}", sources, value=name)


def _type_error(parts: list[str], hint: Any, default: Any, problem: str, sources: _Sources) -> str:
    if hint is not None:
        expected = _describe_type(hint)
    else:  # jsonargparse's own words: "Expected a <class 'int'>. Got value: x"
        expected = _clean(re.sub(r"^Expected |\. Got value: .*$", "", problem.split("\n")[0]))
    if _is_list_type(hint) and isinstance(default, (list, tuple)) and default:
        with contextlib.suppress(TypeError):  # a default that JSON cannot show: no example
            expected += f" (e.g. {json.dumps(list(default))})"
    found = sources.find(parts)
    if found is not None:
        got = found[1]
    else:
        match = _GOT_VALUE.search(problem)
        got = match.group(1).split("\n")[0] if match else None
    message = f"expected {expected}" + (f", got {got}" if got is not None else "")
    return _at_key(parts, message, sources)


def _at_key(
    parts: list[str], message: str, sources: _Sources, colon: bool = True, value: Any = None
) -> str:
    """``[file: ]key: message`` (``key message`` with ``colon=False``), the key spelled as in
    the config file that holds it (the one where it is ``value``, when given)."""
    found = sources.find(parts, value)
    origin, key = ("", ".".join(parts).replace(".[", "["))
    if found is not None and found[0] is not None:
        origin, key = f"{found[0]}: ", found[2]
    return f"{origin}{key}{':' if colon else ''} {message}"


def _class_path_key(parts: list[str], name: str, sources: _Sources) -> list[str]:
    """``key.class_path`` when that is where the user wrote the class ``name``, else ``key``."""
    at_key, at_class_path = sources.find(parts, name), sources.find([*parts, "class_path"], name)
    if at_class_path is not None and (at_key is None or at_key[0] is not None):
        return [*parts, "class_path"]
    return parts


def _first_unknown(parts: list[str], accepted: dict) -> tuple[int, str | None, list] | None:
    """The index of the first part of ``parts`` that no accepted key has there, the closest
    name that is accepted there, and all those names."""
    known = [key.split(".") for key in accepted]
    for index in range(len(parts)):
        if any(key[: index + 1] == parts[: index + 1] for key in known):
            continue
        siblings = sorted(
            {key[index] for key in known if len(key) > index and key[:index] == parts[:index]}
        )
        matches = difflib.get_close_matches(parts[index], siblings, n=1, cutoff=0.6)
        return index, (matches[0] if matches else None), siblings
    return None


def _listing(names: list[str], prefix: str, suffix: str = "") -> str:
    names = list(dict.fromkeys(names))
    if not names:
        return ""
    more = len(names) - MAX_LISTED
    shown = ", ".join(names[:MAX_LISTED]) + (f" and {more} more" if more > 0 else "")
    return f"{prefix}{shown}{suffix}"


# --- types in words -----------------------------------------------------------------------------


def _describe_type(hint: Any) -> str:
    """``int | None`` -> ``an int or null``; ``tuple[int, ...]`` -> ``a list of int``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is type(None):
        return "null"
    if origin in (typing.Union, types.UnionType):
        members = [arg for arg in args if arg is not type(None)]
        literal_members = [arg for arg in members if typing.get_origin(arg) is typing.Literal]
        literals = [value for arg in literal_members for value in typing.get_args(arg)]
        words = [_describe_type(arg) for arg in members if arg not in literal_members]
        if literals:
            words.insert(0, _describe_type(typing.Literal[tuple(literals)]))
        words += ["null"] if len(members) < len(args) else []
        words = list(dict.fromkeys(words))
        return ", ".join(words[:-1]) + f" or {words[-1]}" if len(words) > 1 else words[0]
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(value) for value in args)
    if origin is tuple and args and args[-1] is not Ellipsis:
        return f"a list [{', '.join(_element_name(arg) for arg in args)}]"
    if origin in _LIST_TYPES:
        return f"a list of {_element_name(args[0])}" if args else "a list"
    if origin in (dict, collections.abc.Mapping):
        return "a mapping of keys"
    if origin is collections.abc.Callable:
        returned = args[-1] if args else None
        name = getattr(returned, "__name__", "callable")
        return f"a {name} class_path (with init_args)"
    if hint is bool:
        return "true or false"
    if hint in _SIMPLE_NAMES:
        return f"an {_SIMPLE_NAMES[hint]}" if hint is int else f"a {_SIMPLE_NAMES[hint]}"
    if inspect.isclass(hint) and issubclass(hint, os.PathLike):
        return "a path"
    if inspect.isclass(hint):
        return f"a {hint.__name__}"
    return _clean(str(hint))


def _element_name(hint: Any) -> str:
    if hint in _SIMPLE_NAMES:
        return _SIMPLE_NAMES[hint]
    if inspect.isclass(hint):
        return hint.__name__
    return _describe_type(hint)


def _is_list_type(hint: Any) -> bool:
    members = [hint]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        members = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    return len(members) == 1 and typing.get_origin(members[0]) in _LIST_TYPES


def _classes_in(hint: Any) -> list[type]:
    """The classes a type hint accepts subclasses of (not ``int``, ``str``, ``Path``, ...)."""
    if inspect.isclass(hint) and hint.__module__ not in ("builtins", "pathlib", "datetime"):
        return [hint]
    if isinstance(hint, (list, tuple)):
        return [cls for arg in hint for cls in _classes_in(arg)]
    if typing.get_origin(hint) is collections.abc.Callable:
        return _classes_in(typing.get_args(hint)[-1:])
    return [cls for arg in typing.get_args(hint) for cls in _classes_in(arg)]


def _subclass_names(hint: Any) -> list[str]:
    """Names of the imported, concrete subclasses of the classes ``hint`` accepts."""
    found = [subclass for cls in _classes_in(hint) for subclass in subclasses(cls)]
    return sorted(
        {cls.__name__ for cls in found if not inspect.isabstract(cls) and cls.__name__[0] != "_"}
    )


def _clean(text: str) -> str:
    """The first line of a jsonargparse message, with ``<class 'X'>`` written ``X`` and the
    echoed value of a callable's namespace dropped."""
    first = str(text).strip().split("\n", 1)[0]
    first = re.sub(r"\. Got value: Namespace\(.*$", "", first)
    return _CLASS_REPR.sub(r"\1", first)


def _one_line(text: str) -> str:
    return re.sub(r"\s*\n\s*", "; ", str(text).strip())[:MAX_MESSAGE]


# --- where a key came from ----------------------------------------------------------------------


class _Sources:
    """The command line's options and its config files' contents, to say where a key was
    given (an option given on the command line wins over the files; a later file over an
    earlier one)."""

    def __init__(self, args: list[str]) -> None:
        self.options = _command_line_options(args[1:])
        self.files = []
        for path in config_file_paths(args):
            try:
                self.files.append((path, load_config_file(path)))
            except (UserError, OSError):
                continue

    def find(self, parts: list[str], value: Any = None) -> tuple[str | None, str, str] | None:
        """``(file or None for the command line, the value as given, the key as written)``
        for the key ``parts`` (``init_args`` may be left out where it was given), and where
        ``value`` is given, only where the key has that value."""
        wanted = _without_init_args(parts)
        for option_parts, given in reversed(self.options):
            if _without_init_args(option_parts) == wanted and value in (None, given):
                return None, given, ".".join(option_parts)
        for path, data in reversed(self.files):
            for given, written in _lookup(data, parts):
                if value in (None, given):
                    return path, _shown(given), ".".join(written).replace(".[", "[")
        return None


def _command_line_options(tokens: list[str]) -> list[tuple[list[str], str]]:
    options = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.startswith("--"):
            name, equals, value = token[2:].partition("=")
            if not equals and index + 1 < len(tokens) and not tokens[index + 1].startswith("--"):
                index += 1
                value = tokens[index]
            if f"--{name}" not in CONFIG_FLAGS:
                options.append((name.rstrip("+").split("."), value))
        index += 1
    return options


def _without_init_args(parts: list[str]) -> list[str]:
    return [part for part in parts if part != "init_args"]


def _lookup(node: Any, parts: list[str]) -> Iterator[tuple[Any, list[str]]]:
    """The values at the dotted key ``parts`` of a loaded config, each with the key as written
    there: a dotted key may be written nested or flat, ``init_args`` may be left out beside a
    ``class_path``, and a list (of callbacks) holds the key in any of its items."""
    if not parts:
        yield node, []
    elif isinstance(node, dict):
        for end in range(len(parts), 0, -1):
            key = ".".join(parts[:end])
            if key in node:
                for value, written in _lookup(node[key], parts[end:]):
                    yield value, [key, *written]
        if parts[0] == "init_args" and "class_path" in node:
            yield from _lookup(node, parts[1:])
    elif isinstance(node, list):
        for index, item in enumerate(node):
            for value, written in _lookup(item, parts):
                yield value, [f"[{index}]", *written]


def _shown(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 80 else text[:77] + "..."
