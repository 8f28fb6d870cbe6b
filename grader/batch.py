"""Grading a file of many candidates' answers: validate, grade in chunks, journal, resume."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from grader.bank import Bank
from grader.errors import InputError
from grader.ingest import AnswerRow, RowProblem, Source, iter_rows
from grader.models import GradeResult, Question
from grader.scoring import Grader, Item
from grader.scoring.engine import MAX_ANSWER_CHARS

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


class BatchRecord(GradeResult):
    """One graded answer of a batch: the grade result plus who wrote it and where it came from."""

    candidate: str
    answer: str = Field(default="", description="The answer as graded (cut at 20,000 characters).")
    submission_id: str | None = None
    line: int | None = Field(default=None, description="Input line (row number for JSON); None: not in the input.")
    topic: str | None = None


class BatchPlan(BaseModel):
    """What a validation pass found: how many rows will be graded, what was skipped."""

    rows: int = 0
    valid: int = 0
    problems: list[RowProblem] = Field(default_factory=list)
    skipped_lines: set[int] = Field(default_factory=set)
    question_ids: list[str] = Field(default_factory=list)
    candidates: list[str] = Field(default_factory=list)


class BatchSummary(BaseModel):
    """What a batch run did."""

    results_path: Path
    rows: int
    graded_now: int
    already_done: int
    skipped: list[RowProblem]
    failed: list[str] = Field(default_factory=list, description="'candidate/question: error' lines.")
    llm_usage: dict | None = None


def question_for_row(row: AnswerRow, bank: Bank) -> Question | None:
    """The bank question, or one made from the row's own question and reference answer."""
    if row.question_id in bank.questions:
        return bank.questions[row.question_id]
    if row.question and row.reference_answer and row.reference_answer.strip():
        # Free-form ids from the input are kept as they are (not bank slugs).
        return Question.model_construct(
            id=row.question_id, topic=row.topic or "Custom", question=row.question,
            model_answer=row.reference_answer,
        )
    return None


def plan_batch(src: Source, bank: Bank, *, skip_invalid: bool) -> BatchPlan:
    """Validate every row before any grading; raises InputError unless skip_invalid."""
    plan = BatchPlan()
    seen: dict[str, int] = {}
    qids: dict[str, None] = {}
    cands: dict[str, None] = {}
    for item in iter_rows(src):
        if isinstance(item, RowProblem):
            plan.rows += 1
            plan.problems.append(item)
            if item.fatal:
                break
            plan.skipped_lines.add(item.line)
            continue
        row = item
        plan.rows += 1
        problem = None
        if question_for_row(row, bank) is None:
            problem = RowProblem(file=src.display, line=row.line, field="question_id",
                                 message=f"unknown question id {row.question_id!r} (and no question/reference_answer in the row)")
        elif row.key in seen:
            problem = RowProblem(file=src.display, line=row.line, field="candidate",
                                 message=f"duplicate answer of {row.candidate!r} to {row.question_id!r} (first at line {seen[row.key]})")
        if problem:
            plan.problems.append(problem)
            plan.skipped_lines.add(row.line)
            continue
        seen[row.key] = row.line
        qids.setdefault(row.question_id)
        cands.setdefault(row.candidate)
        plan.valid += 1
    plan.question_ids = list(qids)
    plan.candidates = list(cands)
    if plan.rows == 0:
        raise InputError(f"{src.display}: no answers in the file")
    if plan.problems and (not skip_invalid or plan.valid == 0 or any(p.fatal for p in plan.problems)):
        first = plan.problems[0]
        more = len(plan.problems) - 1
        raise InputError(str(first) + (f" (and {more} more problem(s); --skip-invalid grades the rest)" if more else ""))
    return plan


# ----------------------------------------------------------------------------- journal


def read_journal(path: Path, expect: dict[str, str | None] | None = None) -> dict[str, int]:
    """Keys of the rows already graded (-> their input line); a torn last line is cut off.

    `expect` (e.g. {"model": ..., "trained_model": ...}): every record must have been scored
    by these models, or resuming would mix two scorings in one ranking."""
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
            for key, want in (expect or {}).items():
                if rec.get(key) != want:
                    raise InputError(
                        f"{path}: line {len(done)}: {key} {rec.get(key)!r}, but this run scores with "
                        f"{want!r}; resume with the same settings, or use --force to start over")
            good_end += len(raw)
    if good_end != path.stat().st_size:
        with open(path, "r+b") as fh:
            fh.truncate(good_end)
    return done


def _append(fd: int, records: list[BatchRecord]) -> None:
    # One write() of whole lines: a kill between chunks never leaves half a record behind.
    data = "".join(r.model_dump_json() + "\n" for r in records).encode("utf-8")
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]
    os.fsync(fd)


def iter_journal(path: Path):
    """Records of a results file, in file order."""
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.endswith("\n") and line.strip():
                yield BatchRecord.model_validate_json(line)


# ----------------------------------------------------------------------------- grading


Reviewer = Callable[[list[Item], list[GradeResult]], list[GradeResult]]


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
    on_vectors: Callable[[list[AnswerRow], list[np.ndarray | None]], None] | None = None,
) -> BatchSummary:
    """Grade every valid row not yet in the results file, appending as each chunk is done."""
    done = read_journal(results_path, grader.scored_by()) if resume else {}
    if not resume and results_path.exists():
        results_path.unlink()
    results_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(results_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
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

    def grade_chunk(chunk: list[AnswerRow], items: list[Item], vectors, prepared) -> None:
        try:
            results, vecs = grader.grade_many(items, with_answer_vectors=True, vectors=vectors, prepared=prepared)
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001 - the rows are listed as failed, the run goes on
            summary.failed += [f"{r.candidate}/{r.question_id}: {type(exc).__name__}: {exc}" for r in chunk]
            return
        if reviewer is not None:
            results = reviewer(items, results)
        records = [
            BatchRecord(**res.model_dump(), candidate=r.candidate, answer=r.answer[:MAX_ANSWER_CHARS],
                        submission_id=r.submission_id,
                        line=r.line, topic=it.question.topic)
            for r, it, res in zip(chunk, items, results)
        ]
        _append(fd, records)
        if on_vectors is not None:
            on_vectors(list(chunk), vecs)
        summary.graded_now += len(records)

    def flush():
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
            grade_chunk(window[i:i + chunk_rows], items[i:i + chunk_rows], vectors, prepared[i:i + chunk_rows])
            tick((1 - EMBED_SHARE) * len(window[i:i + chunk_rows]))
        window.clear()

    try:
        for row in iter_rows(src):
            if isinstance(row, RowProblem) or row.line in plan.skipped_lines:
                continue
            if row.key in done:
                summary.already_done += 1
                tick(1)
                resumed.append(row)
                if len(resumed) >= chunk_rows:
                    flush_resumed()
                continue
            window.append(row)
            if len(window) >= window_rows:
                flush()
        flush()
        flush_resumed()
    finally:
        os.close(fd)
    return summary

