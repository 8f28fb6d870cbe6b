"""What every command reads: the console, the settings, the bank, and the output formats."""

from enum import Enum
from typing import Optional

from grader.errors import ConfigError


class ListFormat(str, Enum):
    table = "table"
    json = "json"


class GradeFormat(str, Enum):
    text = "text"
    json = "json"


def console(stderr: bool = False):
    """A rich console without highlighting (answers are shown as written)."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def settings():
    """The settings from the environment and `.env`; a bad one is a one-line ConfigError."""
    from pydantic import ValidationError

    from grader.config import get_settings

    try:
        return get_settings()
    except ValidationError as exc:
        from grader.bank import describe_validation

        raise ConfigError(f"configuration: {describe_validation(exc)}") from None


def bank(require_rubrics: bool = True, only: Optional[str] = None):
    """The configured question bank (only one question's rubric is read when `only` names it)."""
    from grader.bank import load_bank

    s = settings()
    return load_bank(s.questions, s.rubrics_dir, require_rubrics=require_rubrics, only=only)


def fmt(v) -> str:
    """A metric for a table: three decimals, a dash when undefined."""
    return "—" if v is None else f"{v:.3f}"
