"""Writing files that other processes may read at any moment."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_json_atomic(path: str | Path, content: Any, indent: int | None = None) -> None:
    """Write ``content`` as JSON to ``path`` atomically: a temporary file in the same folder,
    then ``os.replace``, so that a concurrent reader (a DDP rank, ``collect`` during a grid)
    never sees a partial file. Creates the folder; raises OSError when it cannot write."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as file:
            json.dump(content, file, indent=indent)
            if indent is not None:
                file.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
