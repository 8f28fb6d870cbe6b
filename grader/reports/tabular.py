"""Machine-readable batch outputs: JSONL, JSON and CSV (spreadsheet-safe), written atomically."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from grader.models import BatchRecord
from grader.fsutil import atomic_open
from grader.reports.aggregate import BatchReport

# Spreadsheets run cells starting with these as formulas; such cells get a leading quote.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value) -> str:
    """A CSV cell that a spreadsheet will show as text, never run."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    text = str(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


def write_jsonl(path: Path, records: Iterable[BatchRecord]) -> int:
    n = 0
    with atomic_open(path) as fh:
        for r in records:
            fh.write(r.model_dump_json() + "\n")
            n += 1
    return n


def write_json(path: Path, records: Iterable[BatchRecord]) -> int:
    n = 0
    with atomic_open(path) as fh:
        fh.write("[")
        for r in records:
            fh.write(("\n" if n == 0 else ",\n") + r.model_dump_json())
            n += 1
        fh.write("\n]\n")
    return n


ANSWER_COLUMNS = [
    "candidate", "submission_id", "question_id", "topic", "score", "max_score", "percent", "band",
    "keywords", "semantic", "llm", "concepts_covered", "concepts_missed", "misconceptions", "flags", "answer",
]


def write_csv_answers(path: Path, records: Iterable[BatchRecord]) -> int:
    n = 0
    with atomic_open(path) as fh:
        w = csv.writer(fh)
        w.writerow(ANSWER_COLUMNS)
        for r in records:
            w.writerow([safe_cell(v) for v in (
                r.candidate, r.submission_id, r.question_id, r.topic, r.score, r.max_score, r.percent, r.band,
                r.components.keywords, r.components.semantic, r.components.llm,
                "; ".join(c.name for c in r.concepts if c.matched),
                "; ".join(c.name for c in r.concepts if not c.matched),
                "; ".join(m.name for m in r.misconceptions),
                "; ".join(r.flags), r.answer,
            )])
            n += 1
    return n


def write_csv_candidates(path: Path, report: BatchReport) -> int:
    qids = [q.question_id for q in report.questions]
    with atomic_open(path) as fh:
        w = csv.writer(fh)
        # Custom question ids come from the input: as column names they are cells too.
        w.writerow(["rank", "candidate", "total", "max_total", "percent", "passed", "answered", "skipped", "flagged"]
                   + [safe_cell(q) for q in qids])
        for c in report.candidates:
            w.writerow([safe_cell(v) for v in (
                c.rank, c.candidate, c.total, c.max_total, c.percent, "yes" if c.passed else "no",
                c.answered, c.skipped, c.flags, *(c.scores.get(q) for q in qids),
            )])
    return len(report.candidates)

