"""`grader questions list|show`: browse the bank."""

from typing import Optional

import typer

from grader.cli.app import questions_app
from grader.cli.context import ListFormat, bank, console
from grader.errors import InputError


@questions_app.command("list")
def questions_list(
    topic: Optional[str] = typer.Option(None, "--topic", "-t", metavar="TOPIC", help="Only this topic."),
    fmt: ListFormat = typer.Option(ListFormat.table, "--format", "-f", help="table or json."),
):
    """List the bank's questions."""
    b = bank(require_rubrics=False)
    qs = b.by_topic(topic)
    if topic and not qs:
        raise InputError(f"--topic: no topic matches {topic!r} (topics: {', '.join(b.topics())})")
    if fmt == ListFormat.json:
        import json

        typer.echo(json.dumps([q.model_dump(include={"id", "topic", "question"}) for q in qs],
                              indent=2, ensure_ascii=False))
        return
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=f"{len(qs)} questions")
    t.add_column("id", style="cyan", no_wrap=True)
    t.add_column("topic")
    t.add_column("question")
    for q in qs:
        t.add_row(escape(q.id), escape(q.topic), escape(q.question))
    console().print(t)


@questions_app.command("show")
def questions_show(
    qid: str = typer.Argument(..., metavar="ID", help="Question id."),
    rubric: bool = typer.Option(True, "--rubric/--no-rubric", help="Show the rubric too."),
):
    """Show one question, its model answer and its rubric."""
    from rich.markup import escape
    from rich.panel import Panel
    from rich.table import Table

    from grader.render import question_panel

    b = bank(require_rubrics=False)
    q = b.get(qid)
    con = console()
    con.print(question_panel(q))
    con.print(Panel(escape(q.model_answer), title="Model answer", title_align="left", border_style="green"))
    r = b.rubrics.get(q.id)
    if rubric and r:
        t = Table(title=f"Rubric · {r.points:g} points")
        t.add_column("concept")
        t.add_column("weight", justify="right")
        t.add_column("required")
        t.add_column("terms")
        for c in r.concepts:
            t.add_row(escape(c.name), f"{c.weight:g}", "yes" if c.required else "", escape(", ".join(c.terms)))
        for m in r.misconceptions:
            t.add_row(f"[magenta]✗ {escape(m.name)}[/]", f"−{m.penalty:g}", "", escape(", ".join(m.terms)))
        con.print(t)
