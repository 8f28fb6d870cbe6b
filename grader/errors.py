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


class Interrupted(GraderError):
    """Ctrl-C, with what to do next (exit status 130, as a shell reports SIGINT)."""

    exit_code = 130


# Problems listed one per line before the rest are summed up in one "… and N more" line.
MAX_LISTED = 20


def listed(lines: list[str], prefix: str = "", limit: int = MAX_LISTED) -> list[str]:
    """At most `limit` lines (each after `prefix`), then one line saying how many more there are."""
    shown = [prefix + line for line in lines[:limit]]
    return shown + ([f"… and {len(lines) - limit} more"] if len(lines) > limit else [])


class InputProblems(InputError):
    """Several problems in one input, each a line naming its file, line and field (exit status 2)."""

    def __init__(self, problems: list[str], hint: str = ""):
        self.problems = problems
        self.hint = hint
        super().__init__("\n".join(listed(problems) + ([hint] if hint else [])))
