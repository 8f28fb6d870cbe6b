"""One progress bar for every long command on a terminal's stderr; evaluate and calibrate, which
run for minutes, also report in plain lines when stderr is not a terminal."""

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


class Lines:
    """Progress as plain lines on stderr when it is not a terminal (a log, a redirect): what is
    being done, how far, and how long it should still take; at most one line per `every` s."""

    def __init__(self, label: str, unit: str, every: float = 10.0):
        import time

        self._clock = time.monotonic
        self.label, self.unit, self.every = label, unit, every
        self._start = self._clock()
        self._last: float | None = None

    def update(self, done: int, total: Optional[int], **_fields) -> None:
        now = self._clock()
        finished = total is not None and done >= total
        if self._last is not None and not finished and now - self._last < self.every:
            return
        if finished and self._last is None and now - self._start < self.every:
            return  # too quick to be worth a line
        self._last = now
        elapsed = now - self._start
        line = f"{self.label}: {done:,}/{total:,} {self.unit}" if total else f"{self.label}: {done:,} {self.unit}"
        if finished:
            line += f", done in {elapsed:.0f} s"
        elif done and total:
            line += f", {elapsed:.0f} s so far, about {elapsed / done * (total - done):.0f} s left"
        elif total:
            line += " ..."
        from grader.cli.context import console

        console(stderr=True).print(line, soft_wrap=True, markup=False, highlight=False)


@contextmanager
def counted(label: str) -> Iterator:
    """The library's (done, total) progress callback: a transient bar of texts on a terminal,
    else a line now and then, so a redirected long run still says what it does."""
    with progress_bar(label, detail="texts", transient=True) as bar:
        yield Lines(label, "texts").update if bar is None else bar.update
