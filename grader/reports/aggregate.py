"""From a batch's results file to what the reports show: ranking, question statistics, copies."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from grader.bank import Bank, question_for_row
from grader.models import AnswerRow, BatchRecord, CopyPair
from grader.reports.human import HumanGrade, HumanReview, with_human_score
from grader.scoring.combine import no_answer

# Above this many answers, the Markdown and HTML reports leave out per-answer details
# (the CSV and JSONL outputs always have them).
DETAIL_LIMIT = 3000


class CandidateRow(BaseModel):
    rank: int
    candidate: str
    total: float
    max_total: float
    percent: float
    passed: bool
    answered: int
    skipped: int
    scores: dict[str, float | None] = Field(description="Score by question id (None: not asked).")
    topics: dict[str, float | None] = Field(description="Percent by topic (None: no question of it was asked).")
    flags: int = 0
    reviewed: int = Field(default=0, description="Answers whose score a person set (grader review).")
    verdict: str | None = Field(default=None, description="A reviewer's advance / reject / hold.")


class QuestionStat(BaseModel):
    question_id: str
    topic: str
    question: str
    n: int
    answered: int
    max_score: float
    mean: float
    stdev: float
    min: float
    max: float
    mean_percent: float
    most_missed: list[tuple[str, int]]


class BatchReport(BaseModel):
    """Everything the Markdown and HTML reports show."""

    title: str
    source: str
    generated: str | None = Field(default=None, description="When the report was made; only with --timestamp.")
    model: str
    pass_mark: float
    n_answers: int = Field(description="Answers given: the input's graded rows.")
    n_skipped: int = Field(default=0, description="Questions asked of a candidate who gave no row for them.")
    candidates: list[CandidateRow]
    questions: list[QuestionStat]
    topics: list[str]
    pairs: list[CopyPair]
    pairs_total: int = Field(default=0, description="Pairs found; `pairs` lists the closest of them.")
    flagged: list[tuple[str, str, list[str]]]
    details: dict[str, list[BatchRecord]] | None
    answer_scores: list[float] = Field(description="Every given answer's percent, for the distribution chart.")
    human: dict[str, HumanGrade] = Field(
        default_factory=dict, description="Scores a reviewer set (grader review), by 'candidate\x1fquestion_id'; "
        "the tables already use them.")

    def human_grade(self, r: BatchRecord) -> HumanGrade | None:
        """The reviewer's grade of a record, when its score is a person's."""
        return self.human.get(f"{r.candidate}\x1f{r.question_id}")

    @property
    def counts(self) -> str:
        """The header's counts: "45 answers · 3 skipped · 6 candidates · 8 questions"."""
        parts = [f"{self.n_answers} answers"] + ([f"{self.n_skipped} skipped"] if self.n_skipped else [])
        return " · ".join(parts + [f"{len(self.candidates)} candidates", f"{len(self.questions)} questions"])


class _Where(BaseModel):
    # What the index of a results file needs of each record; the rest is read when it is yielded.
    candidate: str
    question_id: str
    line: int | None = None


def ordered_records(results_path: Path, assigned: dict[str, list[str]], bank: Bank,
                    custom: dict[str, AnswerRow], scored_by: dict[str, str | None]) -> Iterator[BatchRecord]:
    """Graded records in input order, then a 'no answer' record for every question a candidate
    was asked and did not answer, recording what scored the graded ones (Grader.scored_by())."""
    index: list[tuple[int, int]] = []
    have: set[tuple[str, str]] = set()
    with open(results_path, "rb") as fh:
        offset = 0
        for raw in fh:
            if raw.endswith(b"\n") and raw.strip():
                rec = _Where.model_validate_json(raw)
                index.append((rec.line or 0, offset))
                have.add((rec.candidate, rec.question_id))
            offset += len(raw)
    index.sort()
    with open(results_path, "rb") as fh:
        for _, off in index:
            fh.seek(off)
            yield BatchRecord.model_validate_json(fh.readline())
    # One 'no answer' record per question, copied for each candidate who left it out.
    unanswered: dict[str, BatchRecord] = {}
    for cand, qids in assigned.items():
        for qid in qids:
            if (cand, qid) in have:
                continue
            if qid not in unanswered:
                q = bank.questions.get(qid) or question_for_row(custom[qid], bank)
                base = no_answer(q, bank.rubrics.get(qid), scored_by["model"])
                unanswered[qid] = BatchRecord(**base.model_dump(exclude=set(scored_by)), **scored_by,
                                              candidate=cand, line=None, topic=q.topic)
            yield unanswered[qid].model_copy(update={"candidate": cand})


def assign_ranks(rows: list, share: Callable[[Any], float]) -> None:
    """Sort candidate rows (with `candidate`, `total`, `rank`) by share of the points they were
    asked for, then total, then name; equal results share a rank (1, 2, 2, 4)."""
    # By share: candidates asked different questions are compared fairly, and with the same
    # questions this is the order of totals.
    rows.sort(key=lambda c: (-share(c), -c.total, c.candidate))
    for i, row in enumerate(rows):
        prev = rows[i - 1] if i else None
        same = prev is not None and share(row) == share(prev) and row.total == prev.total
        row.rank = prev.rank if same else i + 1


def build_report(records: Iterator[BatchRecord], *, source: str, pass_mark: float, pairs: list[CopyPair],
                 n_rows_hint: int, model: str, pairs_total: int | None = None, timestamp: bool = False,
                 title: str = "Candidate screening report", human: HumanReview | None = None) -> BatchReport:
    """Aggregate records (one pass) into the report's tables.  A candidate's total, percent and
    skipped count cover only the questions they have a record for (the ones they were asked).
    With `human` (grader review's decisions), a reviewer's score replaces grader's, marked as such."""
    scores: dict[str, dict[str, float]] = defaultdict(dict)
    maxes: dict[str, float] = {}
    topic_of: dict[str, str] = {}
    text_of: dict[str, str] = {}
    missed: dict[str, Counter] = defaultdict(Counter)
    answered: dict[str, int] = Counter()
    answered_q: dict[str, int] = Counter()
    flags_by_cand: Counter = Counter()
    flagged: list[tuple[str, str, list[str]]] = []
    details: dict[str, list[BatchRecord]] | None = defaultdict(list) if n_rows_hint <= DETAIL_LIMIT else None
    percents: list[float] = []
    n = skipped = 0
    used: dict[str, HumanGrade] = {}
    reviewed: Counter = Counter()
    for r in records:
        g = human.grades.get(f"{r.candidate}\x1f{r.question_id}") if human is not None else None
        if g is not None:
            g = g.model_copy(update={"grader_score": r.score})
            r = with_human_score(r, g)
            used[f"{r.candidate}\x1f{r.question_id}"] = g
            reviewed[r.candidate] += 1
        if r.line is None:
            skipped += 1  # made for a question asked and not answered, not read from the input
        else:
            n += 1
        scores[r.candidate][r.question_id] = r.score
        maxes[r.question_id] = r.max_score
        topic_of[r.question_id] = r.topic or "Custom"
        text_of[r.question_id] = r.question
        if r.line is not None:
            percents.append(r.percent)
        if r.band != "no answer":
            answered[r.candidate] += 1
            answered_q[r.question_id] += 1
            for c in r.concepts:
                if not c.matched:
                    missed[r.question_id][c.name] += 1
        serious = [f for f in r.flags if f not in ("no answer", "missing required concept")]
        if serious:
            flags_by_cand[r.candidate] += 1
            flagged.append((r.candidate, r.question_id, serious))
        if details is not None:
            details[r.candidate].append(r)
    qids = list(maxes)
    topics = list(dict.fromkeys(topic_of[q] for q in qids))
    rows = []
    share: dict[str, float] = {}
    for cand, by_q in scores.items():
        total = sum(by_q.values())
        max_total = sum(maxes[q] for q in by_q)
        share[cand] = total / max_total if max_total else 0.0
        pct = round(100 * total / max_total, 1) if max_total else 0.0
        by_topic: dict[str, float | None] = {}
        for t in topics:
            tq = [q for q in by_q if topic_of[q] == t]
            tm = sum(maxes[q] for q in tq)
            by_topic[t] = round(100 * sum(by_q[q] for q in tq) / tm, 1) if tm else None
        rows.append(CandidateRow(
            rank=0, candidate=cand, total=round(total, 2), max_total=round(max_total, 2), percent=pct,
            passed=pct >= pass_mark, answered=answered[cand], skipped=len(by_q) - answered[cand],
            scores={q: by_q.get(q) for q in qids}, topics=by_topic, flags=flags_by_cand[cand],
            reviewed=reviewed[cand], verdict=human.verdicts.get(cand) if human is not None else None,
        ))
    assign_ranks(rows, lambda c: share[c.candidate])
    stats = []
    for q in qids:
        vals = [by_q[q] for by_q in scores.values() if q in by_q]
        stats.append(QuestionStat(
            question_id=q, topic=topic_of[q], question=text_of[q], n=len(vals),
            answered=answered_q[q],
            max_score=maxes[q], mean=round(statistics.fmean(vals), 2),
            stdev=round(statistics.pstdev(vals), 2), min=min(vals), max=max(vals),
            mean_percent=round(100 * statistics.fmean(vals) / maxes[q], 1),
            most_missed=missed[q].most_common(3),
        ))
    return BatchReport(
        title=title, source=source, generated=_now() if timestamp else None,
        model=model, pass_mark=pass_mark, n_answers=n, n_skipped=skipped, candidates=rows, questions=stats, topics=topics,
        pairs=pairs, pairs_total=len(pairs) if pairs_total is None else pairs_total, flagged=flagged, details=dict(details) if details is not None else None,
        answer_scores=percents, human=used,
    )


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
