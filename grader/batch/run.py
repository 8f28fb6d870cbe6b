"""The local engine: grade a file's valid rows in chunks in this process, journal, resume."""

from __future__ import annotations

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


Reviewer = Callable[[list[Item], list[GradeResult]], list[GradeResult]]
OnVectors = Callable[[list[AnswerRow], list[np.ndarray | None]], None]


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

    def flush(journal: Journal):
        if not window:
            return
        items = [Item(question_for_row(r, bank), bank.rubrics.get(r.question_id), r.answer) for r in window]
        prepared = grader.prepare(items)
        texts = grader.texts_for(items, prepared)
        share = EMBED_SHARE * len(window) / max(1, len(texts))
        done = [0.0]

        def embedded(n: int):
            done[0] += n * share
            tick(n * share)
        try:
            vectors = grader.embed_texts(texts, embedded)
        except Exception:  # noqa: BLE001 - each chunk embeds on its own and lists its failure
            vectors = None
        tick(EMBED_SHARE * len(window) - done[0])
        for i in range(0, len(window), chunk_rows):
            grade_chunk(journal, window[i:i + chunk_rows], items[i:i + chunk_rows], vectors,
                        prepared[i:i + chunk_rows])
            tick((1 - EMBED_SHARE) * len(window[i:i + chunk_rows]))
        window.clear()

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
        flush(journal)
        flush_resumed()
    return summary
