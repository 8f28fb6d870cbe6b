"""Rich renderings of questions and results for the terminal."""

from __future__ import annotations

from textwrap import shorten

from rich.console import Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from grader.models import GradeResult, Question

# A graded example is shown in part: enough to recognise it beside the answer.
SHOWN_CHARS = 240
BAND_STYLE = {"strong": "bold green", "acceptable": "bold yellow", "weak": "bold red", "no answer": "dim"}


def question_panel(q: Question, index: int | None = None, total: int | None = None) -> Panel:
    """The question in a panel, with its topic and id."""
    title = f"[bold]{escape(q.topic)}[/] · {escape(q.id)}"
    if index is not None and total:
        title = f"Question {index}/{total} · " + title
    return Panel(Text(q.question, style="bold"), title=title, title_align="left", border_style="cyan")


def result_renderable(r: GradeResult, model_answer: str | None = None) -> Panel:
    """Score, covered concepts with evidence, missed with hints, misconceptions, flags."""
    style = BAND_STYLE.get(r.band, "")
    head = Text.assemble(
        (f"{r.score:g} / {r.max_score:g}", "bold"), "  ", (r.band.upper(), style),
        "   " + r.components.summary(),
    )
    parts: list = [head]
    covered = [c for c in r.concepts if c.matched]
    missed = [c for c in r.concepts if not c.matched]
    if covered:
        t = Table(show_header=False, box=None, padding=(0, 1), expand=True)
        t.add_column(width=2)
        t.add_column(ratio=1)
        for c in covered:
            mark, note = ("[green]✓[/]", "") if c.via == "terms" else ("[yellow]◐[/]", " [dim](partial: in other words)[/]")
            t.add_row(mark, f"[bold]{escape(c.name)}[/]{note}\n[dim]“{escape(c.evidence or '')}”[/]")
        parts += [Text("\nCovered", style="bold green"), t]
    if missed:
        t = Table(show_header=False, box=None, padding=(0, 1), expand=True)
        t.add_column(width=2)
        t.add_column(ratio=1)
        for c in missed:
            req = " [red](required)[/]" if c.required else ""
            t.add_row("[red]✗[/]", f"[bold]{escape(c.name)}[/]{req}\n{escape(c.hint or '')}")
        parts += [Text("\nMissed", style="bold red"), t]
    if r.misconceptions:
        t = Table(show_header=False, box=None, padding=(0, 1), expand=True)
        t.add_column(width=2)
        t.add_column(ratio=1)
        for m in r.misconceptions:
            t.add_row("[magenta]![/]", f"[bold]{escape(m.name)}[/] (−{m.penalty:g})\n"
                      f"[dim]“{escape(m.evidence)}”[/]\n{escape(m.why)}")
        parts += [Text("\nMisconceptions", style="bold magenta"), t]
    if r.nearest_graded:
        n = r.nearest_graded
        parts += [Text("\nClosest graded answer", style="bold"),
                  Text(f"scored {n.score:g}/{n.max_score:g} (similarity {n.similarity:.2f})"
                       + (f": {n.reason}" if n.reason else "")),
                  Text(f"“{shorten(n.answer, SHOWN_CHARS)}”", style="dim")]
    if r.flags:
        parts.append(Text("\nFlags: " + ", ".join(r.flags), style="yellow"))
    if r.feedback:
        parts += [Text("\nFeedback", style="bold"), Text(r.feedback)]
    if model_answer:
        parts += [Text("\nModel answer", style="bold cyan"), Text(model_answer, style="cyan")]
    return Panel(Group(*parts), title=f"Score · {escape(r.question_id)}", title_align="left",
                 border_style=style.replace("bold ", "") or "white")
