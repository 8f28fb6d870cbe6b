"""The Typer applications and the entry point that turns every failure into one line."""

import os
import sys

import typer

from grader.cli.context import console
from grader.errors import GraderError

app = typer.Typer(
    name="grader",
    help="Grade free-text answers to technical interview questions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: the rich renderer costs more imports than the rest of start-up
)
questions_app = typer.Typer(help="Browse the question bank.", no_args_is_help=True)
rubric_app = typer.Typer(help="Check and describe rubrics.", no_args_is_help=True)
app.add_typer(questions_app, name="questions")
app.add_typer(rubric_app, name="rubric")


def main() -> None:
    """Console-script entry point: one-line errors, never a traceback."""
    try:
        app()
    except GraderError as exc:
        from rich.markup import escape

        console(stderr=True).print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        console(stderr=True).print("interrupted")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the promise is no traceback, whatever broke
        if os.environ.get("GRADER_DEBUG"):
            raise
        from rich.markup import escape

        msg = str(exc).splitlines()[0] if str(exc) else ""
        console(stderr=True).print(
            f"[red]error:[/] {escape(type(exc).__name__)}: {escape(msg)} (set GRADER_DEBUG=1 for details)",
            soft_wrap=True,
        )
        sys.exit(1)
