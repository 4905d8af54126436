"""Where the built-in data lives: inside installed packages, found without importing them."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def installed_package_dir(package: str, what: str) -> Path:
    """The directory of the installed ``package`` (not imported); a clear error naming ``what``
    needs it when the package is not installed."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"{what} needs the {package!r} package, which ships it: pip install {package}"
        )
    return Path(next(iter(spec.submodule_search_locations)))
