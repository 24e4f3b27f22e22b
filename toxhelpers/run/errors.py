"""The one error type of the run tooling that is the user's to fix (shared by its modules)."""

from __future__ import annotations


class UsageError(Exception):
    """Bad command line, profile, config file or parameter: reported in one line, exit status 2."""
