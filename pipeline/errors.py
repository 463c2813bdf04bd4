"""Errors a user can cause, each carrying one sentence that names the file, row and column.

The command line catches :class:`UserError` and prints its message without a traceback; any other
exception is a programming error and is allowed to raise.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's inputs, configuration or flags (exit code 2)."""


class ConfigError(UserError):
    """The configuration file is missing, unreadable or holds an invalid value."""


class InputFileError(UserError):
    """A raw input file is missing, unreadable, empty or lacks a required column."""
