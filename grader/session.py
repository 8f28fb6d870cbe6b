"""The interactive practice loop behind `grader ask`."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

from rich.console import Console
from rich.table import Table

from grader.bank import Bank
from grader.models import Question
from grader.models import Answered, Session
from grader.reports.single import session_paths, write_session

FINISH_HELP = (
    "Type your answer; it can span several lines. "
    "[bold]Press Enter on an empty line to finish[/] (Ctrl-D also finishes, Ctrl-C quits)."
)


class _Loader:
    """Loads the grader (model and all) in the background while the candidate types."""

    def __init__(self, settings):
        self._settings = settings
        self._grader = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        try:
            from grader.scoring import grader_from_settings

            g = grader_from_settings(self._settings)
            g.embedder.embed(["warm up"])
            self._grader = g
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            self._error = exc

    def get(self):
        self._thread.join()
        if self._error:
            raise self._error
        return self._grader


def read_answer(console: Console) -> str | None:
    """Read a multi-line answer; None when input ended before anything was typed."""
    try:
        import readline  # noqa: F401 - gives input() line editing and history
    except ImportError:  # pragma: no cover - not on every platform
        pass
    lines: list[str] = []
    while True:
        try:
            line = console.input("[dim]│[/] ")
        except EOFError:
            return "\n".join(lines) if lines else None
        if not line.strip():
            if lines:
                return "\n".join(lines)
            continue
        lines.append(line)


def _ask_yes(console: Console, prompt: str) -> bool:
    try:
        reply = console.input(f"{prompt} [bold][Y/n][/] ")
    except EOFError:
        return False
    return reply.strip().lower() in ("", "y", "yes")


def summary_table(session: Session) -> Table:
    """The session's scores, one row per question, with the total."""
    t = Table(title="Session summary")
    t.add_column("question", style="cyan")
    t.add_column("score", justify="right")
    t.add_column("band")
    for a in session.answers:
        r = a.result
        t.add_row(r.question_id, f"{r.score:g}/{r.max_score:g}", r.band)
    t.add_row("[bold]total[/]", f"[bold]{session.total:g}/{session.max_total:g}[/]", "")
    return t


def run_session(bank: Bank, questions: list[Question], settings, reports_dir: Path, console: Console,
                review=None) -> int:
    """Ask each question in turn, grade, show, save; returns the exit status.

    `review(question, rubric, answer, result) -> result` adds LLM feedback (`ask --llm`).
    """
    from grader.render import question_panel, result_renderable

    # Ctrl-C must stop a practice session even when grader was started with SIGINT ignored
    # (as a background job of a non-interactive shell leaves it).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    loader = _Loader(settings)
    session = Session()
    model_answers = {q.id: q.model_answer for q in questions}
    paths: tuple[Path, Path] | None = None
    try:
        for i, q in enumerate(questions, 1):
            console.print(question_panel(q, i, len(questions)))
            console.print(FINISH_HELP)
            answer = read_answer(console)
            if answer is None:
                break
            with console.status("Grading…"):
                result = loader.get().grade(q, bank.rubrics[q.id], answer)
                if review is not None:
                    result = review(q, bank.rubrics[q.id], answer, result)
            console.print(result_renderable(result, q.model_answer))
            session.answers.append(Answered(answer=answer, result=result))
            # Saved after every answer, so neither Ctrl-C nor a crash loses graded work.
            paths = paths or session_paths(reports_dir, session)
            write_session(paths, session, model_answers)
            if i < len(questions) and not _ask_yes(console, "Next question?"):
                break
    except KeyboardInterrupt:
        console.print("\n[yellow]Stopped.[/]")
    if not session.answers:
        console.print("No answers graded.")
        return 0
    console.print(summary_table(session))
    if paths:
        console.print(f"Report: {paths[0]} and {paths[1]}")
    return 0
