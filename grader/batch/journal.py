"""The results file of a batch: one JSON record per graded answer, appended as chunks finish.

Both engines (local and Ray) build their records with `make_record` and write them through
one `Journal`, so a resumed run reads the same keys and checks the same models either way.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel, Field

from grader.batch.ingest import RowProblem
from grader.errors import InputError
from grader.models import MAX_ANSWER_CHARS, AnswerRow, BatchRecord, GradeResult


class BatchSummary(BaseModel):
    """What a batch run did."""

    results_path: Path
    rows: int
    graded_now: int
    already_done: int
    skipped: list[RowProblem]
    failed: list[str] = Field(default_factory=list, description="'candidate/question: error' lines.")


def make_record(row: AnswerRow, topic: str | None, result: GradeResult) -> BatchRecord:
    """The results-file record of one graded row."""
    return BatchRecord(**result.model_dump(), candidate=row.candidate, answer=row.answer[:MAX_ANSWER_CHARS],
                       submission_id=row.submission_id, line=row.line, topic=topic)


def read_journal(path: Path, expect: dict[str, str | None]) -> dict[str, int]:
    """Keys of the rows already graded (-> their input line); a torn last line is cut off.

    `expect` (Grader.scored_by(): {"model": ..., "trained_model": ...}): every record must have
    been scored by these models, or resuming would mix two scorings in one ranking."""
    done: dict[str, int] = {}
    if not path.exists():
        return done
    good_end = 0
    with open(path, "rb") as fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                break  # torn by a crash mid-write: dropped and graded again
            try:
                rec = json.loads(raw)
                done[f"{rec['candidate']}\x1f{rec['question_id']}"] = rec.get("line") or 0
            except (json.JSONDecodeError, KeyError, TypeError):
                raise InputError(f"{path}: line {len(done) + 1}: not a grader results record; "
                                 "use --force to start over") from None
            for key, want in expect.items():
                if rec.get(key) != want:
                    raise InputError(
                        f"{path}: line {len(done)}: {key} {rec.get(key)!r}, but this run scores with "
                        f"{want!r}; resume with the same settings, or use --force to start over")
            good_end += len(raw)
    if good_end != path.stat().st_size:
        with open(path, "r+b") as fh:
            fh.truncate(good_end)
    return done


class Journal:
    """The results file of one run, open for appending.

    Opening it either starts over (the file is removed) or, with `resume`, reads which rows
    are done, refusing a file scored by other models than `scored_by`."""

    def __init__(self, path: Path, *, resume: bool, scored_by: dict[str, str | None]):
        self.path = path
        self.done = read_journal(path, scored_by) if resume else {}
        if not resume and path.exists():
            path.unlink()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def append(self, rows: Sequence[AnswerRow], topics: Sequence[str | None],
               results: Sequence[GradeResult]) -> int:
        """Record graded rows; one write() of whole lines, so a kill between chunks never
        leaves half a record behind.  Returns how many were written."""
        data = "".join(make_record(r, t, res).model_dump_json() + "\n"
                       for r, t, res in zip(rows, topics, results, strict=True)).encode("utf-8")
        with _ctrl_c_after():
            view = memoryview(data)
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
            os.fsync(self._fd)
        return len(rows)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextmanager
def _ctrl_c_after() -> Iterator[None]:
    """Hold a Ctrl-C until the block is done, so an interrupt never tears a chunk's records
    (a resumed run would re-grade a torn one, but the user asked to stop, not to lose work)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt
