"""`grader review`: the hiring team's review app for a batch run, in the browser."""

from pathlib import Path
from typing import Optional

import typer

from grader.cli.app import app
from grader.cli.context import console, settings


@app.command(short_help="Review a batch in the browser: read, override scores, decide, export.")
def review(
    run: Path = typer.Argument(..., metavar="RUN", help="A batch's results file (*.results.jsonl), or the folder its reports were written to."),
    port: int = typer.Option(0, "--port", min=0, max=65535, help="Port to listen on (default: a free one)."),
    host: str = typer.Option("127.0.0.1", "--host", metavar="ADDRESS", help="Address to listen on (default 127.0.0.1; another is reachable from other machines: warned)."),
    open_: bool = typer.Option(False, "--open", help="Open the app in the browser."),
    reviewer: Optional[str] = typer.Option(None, "--reviewer", metavar="NAME", help="Your name in the audit log (default: the OS user)."),
    pass_mark: float = typer.Option(60.0, "--pass-mark", min=0, max=100, metavar="PERCENT", help="Percent a candidate needs to pass."),
    export: Optional[Path] = typer.Option(None, "--export", metavar="FILE.html", help="Write the batch report with the human scores, marked, and exit."),
    export_graded: Optional[Path] = typer.Option(None, "--export-graded", metavar="FILE.jsonl", help="Write the human grades as a graded file (for --graded) and exit."),
):
    """Start the review app for a batch run and print its URL (with a one-time access token) as the
    first line; Ctrl-C stops it.  Decisions go to RESULTS.review.sqlite beside the results file,
    an append-only audit log; the results file is never changed."""
    from rich.markup import escape

    from grader.review.server import ReviewOptions, run_review

    opts = ReviewOptions(run=run, host=host, port=port, open_browser=open_, reviewer=reviewer, pass_mark=pass_mark,
                         export=export, export_graded=export_graded)
    err = console(stderr=True)
    outcome = run_review(opts, settings(), echo=lambda line: typer.echo(line) or _flush(),
                         warn=lambda msg: err.print(escape(msg), soft_wrap=True))
    if outcome is None:
        err.print("stopped")
        return
    for p in outcome.written:
        err.print(f"wrote {escape(str(p))}")
    if export_graded is not None:
        extra = f"; {outcome.left_out} left out (questions outside the bank)" if outcome.left_out else ""
        err.print(f"{outcome.graded_rows} human grade(s) in {escape(str(export_graded))}{extra}")


def _flush() -> None:
    import sys

    sys.stdout.flush()
