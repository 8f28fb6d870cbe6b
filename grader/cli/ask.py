"""`grader ask`: practise in the terminal."""

from pathlib import Path
from typing import Optional

import typer

from grader.cli import options
from grader.cli.app import app
from grader.cli.context import bank, console, settings
from grader.errors import InputError


@app.command(short_help="Practise: answer questions, get scored at once.")
def ask(
    topic: Optional[str] = typer.Option(None, "--topic", "-t", metavar="TOPIC", help="Only questions of this topic."),
    question: Optional[str] = typer.Option(None, "--question", "-q", metavar="ID", help="Just this question."),
    reports_dir: Optional[Path] = typer.Option(None, "--reports", metavar="DIR", help="Folder for the session report (default: GRADER_REPORTS_DIR, else reports)."),
    llm: options.Llm = False,
    llm_weight: options.LlmWeight = None,
    no_cache: options.NoCache = False,
):
    """Practise: answer questions in the terminal and get scored at once."""
    from grader.session import run_session

    s = settings()
    b = bank()
    if question:
        qs = [b.get(question)]
    else:
        qs = b.by_topic(topic)
        if not qs:
            raise InputError(f"--topic: no topic matches {topic!r} (topics: {', '.join(b.topics())})")
    extra = {"review": options.llm_reviewer(llm_weight, no_cache)} if llm else {}
    code = run_session(b, qs, s, reports_dir or s.reports_dir, console(), **extra)
    raise typer.Exit(code)
