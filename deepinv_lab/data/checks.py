"""Checks of the dataset arguments that several datasets share."""

from __future__ import annotations

from deepinv_lab.errors import UserError


def positive_int(value: object, name: str) -> int:
    """``value`` if it is an ``int`` >= 1 (not a ``bool``).

    Raises:
        UserError: otherwise, naming the argument ``name``.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"{name} must be an integer >= 1, got {value!r}")
    return value
