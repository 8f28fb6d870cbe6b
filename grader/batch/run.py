"""The local engine: grade a file's valid rows in chunks in this process, journal, resume."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from grader.bank import Bank
from grader.batch.ingest import AnswerRow, Source
from grader.batch.journal import BatchSummary, Journal
from grader.batch.plan import BatchPlan, question_for_row
from grader.errors import InputError
from grader.models import GradeResult
from grader.scoring import Grader, Item

# Rows graded (and journaled) together; large enough that the model sees full batches.
CHUNK_ROWS = 256
# Rows whose texts are embedded together, longest first, before their chunks are graded:
# sorting across 256 rows only padded batches about 20% more than one sort over the file,
# 2048 rows about 4% (bench/performance.py measures the whole).
WINDOW_ROWS = 2048
# ...and at most this many chunks, so that a small --chunk-size still means small steps.
WINDOW_CHUNKS = 8
# Share of a window's progress that its embedding stands for (the rest: grading, writing).
EMBED_SHARE = 0.9
# Texts per embed call of the embedding thread (a multiple of the batch size, 64): the
# vectors are cached and an interruption waits for one call at most.
EMBED_THREAD_SLICE = 128
# How long an interrupted run waits for the embedding thread's slice, at most.
STOP_WAIT_S = 60


Reviewer = Callable[[list[Item], list[GradeResult]], list[GradeResult]]
OnVectors = Callable[[list[AnswerRow], list[np.ndarray | None]], None]


class _Stopped(Exception):
    """The embedding thread was asked to stop."""


class _Embedding:
    """A window's texts embedded on a thread of their own while the window before is graded:
    the model runs in native code and leaves the CPU that Python's scoring needs (it used 1.8
    of 2 cores alone).  `stop` ends it after the slice it is in (EMBED_THREAD_SLICE texts, a
    second or so), so an interrupted run exits promptly and never under a running model."""

    def __init__(self, grader: Grader, texts: list[str], progress: Callable[[int], None]):
        self.vectors: dict[str, np.ndarray] | None = None
        self._stopping = False
        self._launched = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(grader, texts, progress), daemon=True)

    def start(self) -> None:
        """Start embedding."""
        # Set first: Ctrl-C can land inside Thread.start, after the thread began.
        self._launched = True
        self._thread.start()

    def _run(self, grader: Grader, texts: list[str], progress: Callable[[int], None]) -> None:
        def step(n: int) -> None:
            if self._stopping:
                raise _Stopped
            progress(n)
        try:
            if not self._stopping:
                self.vectors = grader.embed_texts(texts, step, slice_texts=EMBED_THREAD_SLICE)
        except Exception:  # noqa: BLE001 - each chunk embeds on its own and lists its failure
            self.vectors = None
        finally:
            self._done.set()

    def result(self) -> dict[str, np.ndarray] | None:
        """The vectors, once embedded (None if embedding failed)."""
        self._done.wait()
        return self.vectors

    def stop(self) -> None:
        """Stop after the current slice and wait for it (if it ever started)."""
        self._stopping = True
        if self._launched:
            self._done.wait(STOP_WAIT_S)


class _Window:
    """Rows read and prepared together, their texts embedded together (longest first)."""

    def __init__(self, rows: list[AnswerRow], bank: Bank, grader: Grader, tick: Callable[[float], None]):
        self.rows = rows
        self._grader = grader
        self.items = [Item(question_for_row(r, bank), bank.rubrics.get(r.question_id), r.answer) for r in rows]
        self.prepared = grader.prepare(self.items)
        self.texts = grader.texts_for(self.items, self.prepared)
        self._share = EMBED_SHARE * len(rows) / max(1, len(self.texts))
        self._tick = tick
        self.ticked = 0.0
        self.embedding: _Embedding | None = None

    def _embedded(self, n: int) -> None:
        self.ticked += n * self._share
        self._tick(n * self._share)

    def start(self) -> None:
        """Start embedding the window's texts."""
        self.embedding = _Embedding(self._grader, self.texts, self._embedded)
        self.embedding.start()
def run_batch(
    src: Source,
    bank: Bank,
    grader: Grader,
    plan: BatchPlan,
    results_path: Path,
    *,
    resume: bool = False,
    chunk_rows: int = CHUNK_ROWS,
    reviewer: Reviewer | None = None,
    on_progress: Callable[[float], None] | None = None,
    on_vectors: OnVectors | None = None,
) -> BatchSummary:
    """Grade every valid row not yet in the results file, appending as each chunk is done."""
    summary = BatchSummary(results_path=results_path, rows=plan.rows, graded_now=0,
                           already_done=0, skipped=plan.problems)
    window: list[AnswerRow] = []
    resumed: list[AnswerRow] = []
    window_rows = max(chunk_rows, min(WINDOW_ROWS, WINDOW_CHUNKS * chunk_rows))

    def flush_resumed():
        # Rows graded by an earlier run still take part in copy detection; their vectors
        # come back from the embedding cache.
        if resumed and on_vectors is not None:
            on_vectors(list(resumed), grader.answer_vectors([r.answer for r in resumed]))
        resumed.clear()

    def tick(n: float):
        if on_progress:
            on_progress(n)

    def grade_chunk(journal: Journal, chunk: list[AnswerRow], items: list[Item], vectors, prepared) -> None:
        try:
            results, vecs = grader.grade_many(items, with_answer_vectors=True, vectors=vectors, prepared=prepared)
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001 - the rows are listed as failed, the run goes on
            summary.failed += [f"{r.candidate}/{r.question_id}: {type(exc).__name__}: {exc}" for r in chunk]
            return
        if reviewer is not None:
            results = reviewer(items, results)
        summary.graded_now += journal.append(chunk, [it.question.topic for it in items], results)
        if on_vectors is not None:
            on_vectors(list(chunk), vecs)

    # The window being embedded while the one before it is graded.
    pending: list[_Window] = []

    def grade_window(journal: Journal, w: _Window, vectors: dict[str, np.ndarray] | None):
        tick(EMBED_SHARE * len(w.rows) - w.ticked)
        for i in range(0, len(w.rows), chunk_rows):
            grade_chunk(journal, w.rows[i:i + chunk_rows], w.items[i:i + chunk_rows], vectors,
                        w.prepared[i:i + chunk_rows])
            tick((1 - EMBED_SHARE) * len(w.rows[i:i + chunk_rows]))

    def flush(journal: Journal, *, last: bool = False):
        # Read this window while the one before is still embedded, wait for that one's vectors,
        # start embedding this one, then grade the one before: one embedding at a time.
        # A window stays in `pending` until its embedding is done: an interruption stops it.
        before = pending[0] if pending else None
        now = _Window(list(window), bank, grader, tick) if window else None
        window.clear()
        vectors = before.embedding.result() if before else None
        if before:
            pending.remove(before)
        if now:
            pending.append(now)
            now.start()
        if before:
            grade_window(journal, before, vectors)
        if last and pending:
            flush(journal)  # nothing left to read: grade the window just started

    try:
        with Journal(results_path, resume=resume, scored_by=grader.scored_by()) as journal:
            for row in plan.rows_to_grade(src):
                if row.key in journal.done:
                    summary.already_done += 1
                    tick(1)
                    resumed.append(row)
                    if len(resumed) >= chunk_rows:
                        flush_resumed()
                    continue
                window.append(row)
                if len(window) >= window_rows:
                    flush(journal)
            flush(journal, last=True)
            flush_resumed()
    finally:
        for w in pending:
            if w.embedding is not None:
                w.embedding.stop()
    return summary
