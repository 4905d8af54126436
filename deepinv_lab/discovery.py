"""Finding blocks by walking subclasses, the one discovery mechanism of the project.

A block needs no registration: the tests check every Model and every System that
:func:`subclasses` finds, and config errors list the classes a config key accepts from the same
walk, so a class is covered the day its file is added.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TypeVar

T = TypeVar("T")


def import_package(package: str) -> None:
    """Import every module of ``package`` (a dotted name such as ``"deepinv_lab.models"``), so
    that the classes they define become subclasses that :func:`subclasses` can find."""
    module = importlib.import_module(package)
    for info in pkgutil.walk_packages(module.__path__, f"{package}."):
        importlib.import_module(info.name)


def subclasses(base: type[T], package: str | None = None) -> list[type[T]]:
    """The subclasses of ``base`` at every depth, each once, ordered by module and name.

    Without ``package``, the subclasses imported so far. With ``package``, every module of that
    package is imported first (:func:`import_package`) and only the classes defined in it are
    kept (not, say, those a test defines).
    """
    if package is not None:
        import_package(package)
    found: dict[type, None] = {}
    pending = [base]
    while pending:
        for sub in pending.pop().__subclasses__():
            if sub not in found:
                found[sub] = None
                pending.append(sub)
    if package is not None:
        found = {
            cls: None
            for cls in found
            if cls.__module__ == package or cls.__module__.startswith(f"{package}.")
        }
    return sorted(found, key=lambda cls: (cls.__module__, cls.__qualname__))
