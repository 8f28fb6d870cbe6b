"""A run and its decisions together: final scores, the ranking, progress, and making decisions.

No web here: the app asks this module and renders what it returns."""

from __future__ import annotations

from pydantic import BaseModel, Field

from grader.errors import InputError
from grader.reports.aggregate import assign_ranks
from grader.reports.human import HumanReview
from grader.review.queue import QueueItem, Reason, all_reasons, review_queue
from grader.review.run import ReviewRun
from grader.batch.decisions import ANSWER_KINDS, VERDICT_QID, Decision, DecisionStore, NewDecision

PAGE = 100


class CandidateSummary(BaseModel):
    """One row of the ranking, with the human scores in the totals."""

    index: int
    candidate: str
    rank: int = 0
    total: float
    max_total: float
    percent: float
    passed: bool
    answers: int
    reviewed: int
    needs_review: int = Field(description="Answers with a reason to look and no decision yet.")
    flags: int = Field(description="Answers with a flag.")
    verdict: str | None = None
    conflicts: int = 0


class Progress(BaseModel):
    reviewed: int
    total: int

    @property
    def text(self) -> str:
        return f"{self.reviewed} of {self.total} answers reviewed"


class RankingQuery(BaseModel):
    """The ranking page's filters, search and order (from its query string)."""

    result: str = Field(default="", pattern=r"^(|pass|fail)$")
    flag: str = Field(default="", pattern=r"^(|flagged|needs-review|clean)$")
    reviewed: str = Field(default="", pattern=r"^(|yes|no|partly)$")
    verdict: str = Field(default="", pattern=r"^(|advance|reject|hold|none)$")
    q: str = Field(default="", max_length=200)
    sort: str = Field(default="rank", pattern=r"^(rank|candidate|percent|reviewed|needs|flags)$")
    desc: bool = False
    page: int = Field(default=1, ge=1, le=100_000)


class ReviewState:
    """A loaded run, its decision store and the reasons to review each answer."""

    def __init__(self, run: ReviewRun, store: DecisionStore, *, pass_mark: float = 60.0, reviewer: str = "reviewer"):
        self.run = run
        self.store = store
        self.pass_mark = pass_mark
        self.reviewer = reviewer
        self.reasons: list[list[Reason]] = all_reasons(run.records, pass_mark)
        self.candidate_index = {c: i for i, c in enumerate(run.candidates)}
        self._ranked: tuple[int, list[CandidateSummary]] | None = None
        self._queued: tuple[int, list[QueueItem]] | None = None

    # ------------------------------------------------------------------ reading
    def refresh(self) -> None:
        """See decisions made since (by this server or another reviewer's)."""
        self.store.refresh()

    def latest(self, i: int) -> Decision | None:
        r = self.run.records[i]
        return self.store.latest.get((r.candidate, r.question_id))

    def history(self, i: int) -> list[Decision]:
        r = self.run.records[i]
        return self.store.history.get((r.candidate, r.question_id), [])

    def human(self, i: int) -> Decision | None:
        """The decision that set this answer's final score, if a person set it."""
        d = self.latest(i)
        return d if d is not None and d.kind in ANSWER_KINDS and d.new_score is not None else None

    def final(self, i: int) -> float:
        d = self.human(i)
        return d.new_score if d is not None else self.run.records[i].score  # type: ignore[return-value]

    def verdict(self, candidate: str) -> Decision | None:
        return self.store.latest.get((candidate, VERDICT_QID))

    def reviewed(self) -> set[int]:
        return {i for i in range(len(self.run.records)) if self.human(i) is not None}

    def progress(self) -> Progress:
        n = sum(1 for (c, q), d in self.store.latest.items() if q != VERDICT_QID and d.kind in ANSWER_KINDS
                and self.run.index(c, q) is not None)
        return Progress(reviewed=n, total=len(self.run.records))

    def ranking(self) -> list[CandidateSummary]:
        """Every candidate by share of points (final scores), equal results sharing a rank; kept
        until the next decision (callers must not change the rows)."""
        if self._ranked is not None and self._ranked[0] == self.store.last_id:
            return self._ranked[1]
        rows: list[CandidateSummary] = []
        latest = self.store.latest
        for ci, cand in enumerate(self.run.candidates):
            total = max_total = 0.0
            reviewed = needs = flags = conflicts = 0
            for i in self.run.of_candidate(cand):
                r = self.run.records[i]
                d = latest.get((cand, r.question_id))
                human = d is not None and d.kind in ANSWER_KINDS and d.new_score is not None
                total += d.new_score if human else r.score  # type: ignore[operator]
                max_total += r.max_score
                reviewed += human
                needs += bool(self.reasons[i]) and not human
                flags += any(f not in ("no answer", "missing required concept") for f in r.flags)
                conflicts += d is not None and d.conflict_with is not None
            v = latest.get((cand, VERDICT_QID))
            pct = round(100 * total / max_total, 1) if max_total else 0.0
            rows.append(CandidateSummary.model_construct(
                index=ci, candidate=cand, rank=0, total=round(total, 2), max_total=round(max_total, 2), percent=pct,
                passed=pct >= self.pass_mark, answers=len(self.run.of_candidate(cand)), reviewed=reviewed,
                needs_review=needs, flags=flags, verdict=v.verdict if v else None, conflicts=conflicts))
        assign_ranks(rows, lambda c: c.total / c.max_total if c.max_total else 0.0)
        self._ranked = (self.store.last_id, rows)
        return rows

    def candidate_total(self, candidate: str) -> tuple[float, float, float]:
        """One candidate's total, maximum and percent with the final scores (without the whole ranking)."""
        idx = self.run.of_candidate(candidate)
        total = round(sum(self.final(i) for i in idx), 2)
        top = round(sum(self.run.records[i].max_score for i in idx), 2)
        return total, top, round(100 * total / top, 1) if top else 0.0

    def queue(self, limit: int | None = None) -> list[QueueItem]:
        """The review queue, kept until the next decision."""
        if self._queued is None or self._queued[0] != self.store.last_id:
            self._queued = (self.store.last_id, review_queue(self.reasons, self.reviewed()))
        items = self._queued[1]
        return items if limit is None else items[:limit]

    def human_review(self) -> HumanReview:
        return self.store.human_review()

    # ------------------------------------------------------------------ deciding
    def _answer_decision(self, i: int, kind: str, score: float | None, note: str, seen: int) -> NewDecision:
        if not 0 <= i < len(self.run.records):
            raise InputError("answer: no such answer")
        r = self.run.records[i]
        llm = r.llm or {}
        if kind == "score" or kind == "group":
            if score is None or not 0 <= score <= r.max_score:
                raise InputError(f"score: give a score from 0 to {r.max_score:g}")
            new = float(score)
        elif kind == "accept":
            new = self.final(i)
        elif kind in ("llm-accept", "llm-reject"):
            frac = llm.get("fraction" if kind == "llm-accept" else "deterministic")
            if not isinstance(frac, (int, float)):
                raise InputError("kind: this answer has no LLM suggestion")
            new = round(float(frac) * r.max_score, 2)
        else:
            raise InputError(f"kind: {kind!r} is not a decision on an answer")
        return NewDecision(kind=kind, candidate=r.candidate, question_id=r.question_id, old_score=self.final(i),
                           new_score=round(new, 2), note=note, seen=seen)

    def decide(self, i: int, kind: str, score: float | None = None, note: str = "", seen: int = 0) -> Decision:
        """Record one decision on answer `i` (override, accept, LLM accept / reject)."""
        self.refresh()
        return self.store.record([self._answer_decision(i, kind, score, note, seen)], self.reviewer)[0]

    def grade_group(self, members: list[tuple[int, int]], score: float, note: str = "") -> list[Decision]:
        """One score for a group of answers to one question: a decision per answer, one transaction."""
        self.refresh()
        if not members:
            raise InputError("members: the group is empty")
        qids = {self.run.records[i].question_id for i, _ in members if 0 <= i < len(self.run.records)}
        if len(qids) != 1:
            raise InputError("members: a group is answers to one question")
        return self.store.record([self._answer_decision(i, "group", score, note, seen) for i, seen in members],
                                 self.reviewer)

    def set_verdict(self, ci: int, verdict: str, note: str = "", seen: int = 0) -> Decision:
        """Advance, reject or hold candidate number `ci`."""
        if not 0 <= ci < len(self.run.candidates):
            raise InputError("candidate: no such candidate")
        self.refresh()
        item = NewDecision(kind="verdict", candidate=self.run.candidates[ci], verdict=verdict, note=note, seen=seen)
        return self.store.record([item], self.reviewer)[0]


def filter_ranking(rows: list[CandidateSummary], q: RankingQuery) -> list[CandidateSummary]:
    """The ranking filtered, searched and sorted as the page asks."""
    out = rows
    if q.result:
        out = [r for r in out if r.passed == (q.result == "pass")]
    if q.flag == "flagged":
        out = [r for r in out if r.flags]
    elif q.flag == "needs-review":
        out = [r for r in out if r.needs_review]
    elif q.flag == "clean":
        out = [r for r in out if not r.flags and not r.needs_review]
    if q.reviewed == "yes":
        out = [r for r in out if r.reviewed == r.answers]
    elif q.reviewed == "no":
        out = [r for r in out if r.reviewed == 0]
    elif q.reviewed == "partly":
        out = [r for r in out if 0 < r.reviewed < r.answers]
    if q.verdict:
        want = None if q.verdict == "none" else q.verdict
        out = [r for r in out if r.verdict == want]
    if q.q.strip():
        needle = q.q.strip().casefold()
        out = [r for r in out if needle in r.candidate.casefold()]
    keys = {"rank": lambda r: (r.rank, r.candidate), "candidate": lambda r: (r.candidate.casefold(), r.rank),
            "percent": lambda r: (r.percent, -r.rank), "reviewed": lambda r: (r.reviewed, -r.rank),
            "needs": lambda r: (r.needs_review, -r.rank), "flags": lambda r: (r.flags, -r.rank)}
    return sorted(out, key=keys[q.sort], reverse=q.desc)
