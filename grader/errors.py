"""Errors that reach the user as one line and a non-zero exit, never a traceback."""


class GraderError(Exception):
    """Base of every error grader reports to the user."""

    exit_code = 1


class InputError(GraderError):
    """Bad input: a file, line or field the user can fix (exit status 2)."""

    exit_code = 2


class ConfigError(GraderError):
    """A setting that is missing or wrong (exit status 2)."""

    exit_code = 2
