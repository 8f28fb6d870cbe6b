"""One progress bar for every long command: on a terminal's stderr only, nothing elsewhere."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Optional


class Bar:
    """A running bar: advance by a count, or set done and total (and any fields of its detail)."""

    def __init__(self, progress, task):
        self._progress, self._task = progress, task

    def advance(self, n: int) -> None:
        self._progress.advance(self._task, n)

    def update(self, done: int, total: Optional[int], **fields) -> None:
        self._progress.update(self._task, completed=done, total=total, **fields)

    def log(self, message: str) -> None:
        """Print above the bar without tearing it."""
        self._progress.console.print(message, soft_wrap=True, markup=False)


@contextmanager
def progress_bar(label: str, *, detail: str = "", total: Optional[int] = None, show: bool = True,
                 transient: bool = False, rate: Optional[str] = None, **fields) -> Iterator[Optional[Bar]]:
    """Yield a Bar on a terminal's stderr, None when output is not a terminal or `show` is off.
    `detail` is a rich template after the count (it may name `fields`); `rate` a unit per second."""
    from grader.cli.context import console

    err = console(stderr=True)
    if not show or not err.is_terminal:
        yield None
        return
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task):
            return Text(f"{task.speed:.1f} {rate}/s" if task.speed else "", style="cyan")

    columns = [TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn()]
    if detail:
        columns.append(TextColumn(detail))
    if rate:
        columns.append(Rate())
    else:
        columns.append(TimeElapsedColumn())
    columns += [TextColumn("ETA"), TimeRemainingColumn()]
    with Progress(*columns, console=err, transient=transient) as p:
        yield Bar(p, p.add_task(label, total=total, **fields))


@contextmanager
def counted(label: str) -> Iterator:
    """The library's (done, total) progress callback, drawn as a transient bar of texts."""
    with progress_bar(label, detail="texts", transient=True) as bar:
        yield None if bar is None else bar.update
