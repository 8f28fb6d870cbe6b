"""The Typer applications and the entry point that turns every failure into one line."""

import os
import sys
from typing import Optional

import typer

from grader.cli.context import console
from grader.cli.help import GraderGroup
from grader.errors import GraderError, InputProblems, Interrupted, listed

# Subcommands inherit these from the group's context, so `-h` works on every command.
CONTEXT = {"help_option_names": ["-h", "--help"]}

app = typer.Typer(
    name="grader",
    cls=GraderGroup,
    help="Grade free-text answers to technical interview questions.",
    no_args_is_help=True,
    context_settings=CONTEXT,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: the rich renderer costs more imports than the rest of start-up
)
questions_app = typer.Typer(cls=GraderGroup, help="Browse the question bank.", no_args_is_help=True)
rubric_app = typer.Typer(cls=GraderGroup, help="Check and describe rubrics.", no_args_is_help=True)
app.add_typer(questions_app, name="questions")
app.add_typer(rubric_app, name="rubric")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"grader {version('grader')}")
        except PackageNotFoundError:  # run from a checkout that was never installed
            typer.echo("grader (not installed)")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Optional[bool] = typer.Option(None, "--version", "-V", callback=_version, is_eager=True,
                                                help="Print the version and exit."),
) -> None:
    """Grade free-text answers to technical interview questions."""


def main() -> None:
    """Console-script entry point: one-line errors, never a traceback; Ctrl-C exits 130."""
    # The console is made only when something is printed: rich.console costs a fifth of start-up.
    def err():
        return console(stderr=True)

    try:
        # Not standalone: click would print "Aborted!" for Ctrl-C and hide the exit status.
        code = app(standalone_mode=False)
    except GraderError as exc:
        from rich.markup import escape

        if isinstance(exc, Interrupted):
            err().print(escape(str(exc)), soft_wrap=True)
        elif isinstance(exc, InputProblems):  # every problem on a line of its own
            for line in listed(exc.problems, "error: "):
                err().print(escape(line), soft_wrap=True)
            if exc.hint:
                err().print(escape(exc.hint), soft_wrap=True)
        else:
            err().print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort) as exc:
        if isinstance(exc, typer.Abort) and not isinstance(exc.__cause__, KeyboardInterrupt):
            err().print("aborted")  # end of input at a prompt
            sys.exit(1)
        err().print("interrupted")
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors: the message and the usage line, as click prints them
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            err().print(f"error: {exc.format_message()}", markup=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - the promise is no traceback, whatever broke
        if os.environ.get("GRADER_DEBUG"):
            raise
        from rich.markup import escape

        msg = str(exc).splitlines()[0] if str(exc) else ""
        err().print(
            f"[red]error:[/] {escape(type(exc).__name__)}: {escape(msg)} (set GRADER_DEBUG=1 for details)",
            soft_wrap=True,
        )
        sys.exit(1)
    if code == 130:  # typer's own answer to a Ctrl-C that reached it
        err().print("interrupted")
    sys.exit(code if isinstance(code, int) else 0)
