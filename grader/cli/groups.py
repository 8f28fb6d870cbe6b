"""`grader groups`: each question's answers grouped by meaning, and which to grade first."""

from pathlib import Path
from typing import Optional

import typer

from grader.cli.app import app
from grader.cli.context import ListFormat, bank, console, settings
from grader.cli.progress import progress_bar


@app.command(short_help="Group each question's answers by meaning, and say which to grade first.")
def groups(
    file: Path = typer.Argument(..., metavar="FILE", help="Answer file, as for batch (.csv, .jsonl, .json)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", metavar="FILE", help="Write the groups, one JSON line each."),
    format_: ListFormat = typer.Option(ListFormat.table, "--format", "-f", help="table or json (on standard output)."),
    graded: Optional[Path] = typer.Option(
        None, "--graded", metavar="FILE",
        help="Answers graded already (JSONL, as for evaluate; default GRADER_GRADED): groups they cover are not suggested.",
    ),
):
    """Group each question's answers by meaning, so you grade one representative per group, and
    say which groups to grade first: the largest not yet covered by a graded answer (--graded),
    the most uncertain among equals."""
    from rich.markup import escape
    from rich.table import Table

    from grader.batch.groups import group_answers, write_groups
    from grader.graded_file import read_graded
    from grader.scoring import grader_from_settings

    s = settings()
    b = bank()
    graded = graded or s.graded
    graded_rows = read_graded(graded, bank=b) if graded is not None else None
    grader = grader_from_settings(s.model_copy(update={"graded": None}))
    with progress_bar("Grouping", detail="questions") as bar:
        result = group_answers(str(file), b, grader, graded=graded_rows,
                               progress=None if bar is None else bar.update)
    if out is not None:
        write_groups(out, result)
    if format_ == ListFormat.json:
        typer.echo(result.model_dump_json(indent=2))
        return
    # Question, representative and why share one wrapping cell: seven columns side by side left
    # the representative a word per line at 80 columns.
    t = Table(title=f"{escape(result.source)}: {result.answers} answers · {result.questions} questions · "
                    f"{len(result.groups)} groups", show_lines=True)
    t.add_column("grade", justify="right", no_wrap=True)
    t.add_column("size", justify="right", no_wrap=True)
    t.add_column("mean", justify="right", no_wrap=True)
    t.add_column("question · group: representative, and why")
    for g in sorted(result.groups, key=lambda g: (g.suggest == 0, g.suggest, g.question_id, g.group)):
        answer = g.answer if len(g.answer) <= 120 else g.answer[:117] + "..."
        t.add_row(str(g.suggest or "-"), str(g.size),
                  "-" if g.mean_score is None else f"{g.mean_score:g}/{g.max_score:g}",
                  f"[bold]{escape(g.question_id)}[/] · group {g.group}: {escape(g.representative.candidate)}: "
                  f"{escape(answer)}\n[dim]{escape(g.why)}[/]")
    console().print(t)
    if out is not None:
        console(stderr=True).print(f"wrote {escape(str(out))}")
