"""One-line messages from jsonargparse's errors, for the command line and the grid checks."""

from __future__ import annotations

import re

_NOISE = ("Does not validate against any of the", "Subtypes", "Errors", "Given value", "Expected a")


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
    return (f"{where}: {text}" if where else text)[:800]
