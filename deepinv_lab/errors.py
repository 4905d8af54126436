"""The one exception type for mistakes in what a user gives.

``deepinv-lab`` reports a :class:`UserError` in one line (the key, file or shapes it names) and
exits with status 2; every other exception is a bug or an environment failure and keeps its
traceback. Raise it where user input is checked: a config value (a block's constructor
argument), a file (a config, a checkpoint, a dataset), the shapes of the user's data, a
command-line option. Do not raise it for internal invariants: a wrong shape produced by the
library's own code is a bug.

It subclasses ``ValueError``, so Python callers that catch ``ValueError`` keep working.
"""

from __future__ import annotations


class UserError(ValueError):
    """A mistake in the user's input, reported by the command line in one line without a
    traceback. The message names what is wrong (the config key, the file, the shapes) and,
    where possible, what would be right."""
