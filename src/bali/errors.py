"""The one error path: every user-facing mistake is a :class:`BaliError`, which the CLI prints
as one line, ``bali: error: <message>``, with exit status 2 and no traceback.

- :class:`BaliInputError`: a bad or missing input file, ``<file>[:<line>]: <what>``;
- :class:`ConfigError`: an invalid workflow config, naming the key path;
- :class:`OptionError`: an impossible option value or combination.

``ConfigError`` and ``OptionError`` are also ``ValueError``\\ s, as bad values are. Any other
exception is a bug in bali and keeps its traceback.
"""

from __future__ import annotations

import os


class BaliError(Exception):
    """A user-facing mistake (module docstring)."""


class BaliInputError(BaliError):
    """Bad user input. ``str(err)`` is one line: ``<file>[:<line>]: <what is wrong>``."""

    def __init__(self, path: str | os.PathLike, message: str, line: int | None = None):
        self.path, self.line, self.message = str(path), line, message
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {message}")


class ConfigError(BaliError, ValueError):
    """Invalid configuration; the message is one line naming the key path."""


class OptionError(BaliError, ValueError):
    """An impossible option value or combination; the message names the option."""
