"""The exceptions ensemblex raises for a user's mistake (bottom layer, no imports).

Every check of user input raises one of these. Each also derives from the
built-in exception a caller would expect (``ValueError``, ``TypeError``,
``ImportError``), so ``except ValueError`` keeps working; the command line
reports exactly this hierarchy as one line and shows a traceback for anything
else, which is a bug in ensemblex.

Examples
--------
>>> from ensemblex.errors import InputError, UserError
>>> issubclass(InputError, ValueError) and issubclass(InputError, UserError)
True
"""

from __future__ import annotations

__all__ = [
    "InputError",
    "InputTypeError",
    "MissingExtraError",
    "UserError",
]


class UserError(Exception):
    """A mistake in what the user asked for or gave; the message says what to do."""


class InputError(UserError, ValueError):
    """A value the user gave is not usable (wrong option, shape, range, kind of dataset)."""


class InputTypeError(UserError, TypeError):
    """An argument of the wrong type."""


class MissingExtraError(UserError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""
