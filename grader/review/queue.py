"""What most needs a human: the reasons to look at an answer, and the review queue they order.

Kept here, not in the combiner: none of these changes a score, they only say where a score is
least to be trusted.  The Flags column was empty for a candidate whose one-line answers scored
9.79/10; a short answer with a high score, signals that disagree, or a graded answer close in
meaning that scored very differently now put such answers in the queue.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel

from grader.models import BatchRecord
from grader.scoring.combine import ACCEPTABLE, STRONG
from grader.scoring.flags import INJECTION, NO_ANSWER, REQUIRED_MISSING

# A short answer (fewer words than this) with a high score (this fraction or more) is suspect.
SHORT_WORDS = 20
HIGH = 0.7
# Rubric concepts and similarity to the model answer this far apart: the signals disagree.
SIGNALS_APART = 0.5
# The LLM's grounded fraction this far from the score.
LLM_APART = 0.3
# A graded answer this close in meaning (cosine) whose grade is this far (fraction) from the score.
NEAREST_SIM = 0.85
NEAREST_APART = 0.3
# A fraction this close to a band boundary, a candidate's percent this close to the pass mark.
BOUNDARY_NEAR = 0.04
PASS_NEAR = 5.0

# How much each reason weighs in the queue's order.
WEIGHTS = {"injection": 8.0, "flag": 5.0, "llm": 4.0, "short": 4.0, "nearest": 3.0, "signals": 2.0, "pass": 2.0, "boundary": 1.0}
_QUIET_FLAGS = {NO_ANSWER, REQUIRED_MISSING}


class Reason(BaseModel):
    kind: str
    text: str


class QueueItem(BaseModel):
    index: int
    priority: float
    reasons: list[Reason]


def answer_reasons(r: BatchRecord, candidate_percent: float | None = None, pass_mark: float = 60.0) -> list[Reason]:
    """Why a person should look at this answer (empty: nothing stands out)."""
    out: list[Reason] = []
    frac = r.score / r.max_score if r.max_score else 0.0
    for f in r.flags:
        if f not in _QUIET_FLAGS:
            kind = "injection" if f == INJECTION else "llm" if f.startswith("llm") else "flag"
            out.append(Reason(kind=kind, text=f))
    if r.band == "no answer":
        return out
    words = len(r.answer.split())
    if words < SHORT_WORDS and frac >= HIGH:
        out.append(Reason(kind="short", text=f"{words}-word answer scored {frac:.0%}"))
    llm = r.components.llm
    if llm is not None and abs(llm - frac) > LLM_APART and not any(x.kind == "llm" for x in out):
        out.append(Reason(kind="llm", text=f"LLM {llm:.0%} against {frac:.0%}"))
    c = r.components
    if abs(c.keywords - c.semantic) >= SIGNALS_APART:
        out.append(Reason(kind="signals", text=f"signals disagree: rubric concepts {c.keywords:.0%}, "
                                               f"similarity {c.semantic:.0%}"))
    n = r.nearest_graded
    if n is not None and n.similarity >= NEAREST_SIM and n.max_score:
        g = n.score / n.max_score
        if abs(g - frac) >= NEAREST_APART:
            out.append(Reason(kind="nearest", text=f"a graded answer this close ({n.similarity:.2f}) "
                                                   f"scored {g:.0%}"))
    if min(abs(frac - b) for b in (ACCEPTABLE, STRONG)) < BOUNDARY_NEAR:
        out.append(Reason(kind="boundary", text=f"{frac:.0%} is at a band boundary"))
    if candidate_percent is not None and abs(candidate_percent - pass_mark) < PASS_NEAR:
        out.append(Reason(kind="pass", text=f"candidate at {candidate_percent:g}%, near the pass mark"))
    return out


def priority(reasons: Iterable[Reason]) -> float:
    """The queue's order: the weights of the distinct kinds of reason."""
    return sum(WEIGHTS.get(k, 1.0) for k in {r.kind for r in reasons})


def candidate_percents(records: list[BatchRecord]) -> dict[str, float]:
    """Each candidate's percent of the points of the questions they have a record for."""
    tot: dict[str, list[float]] = {}
    for r in records:
        t = tot.setdefault(r.candidate, [0.0, 0.0])
        t[0] += r.score
        t[1] += r.max_score
    return {c: round(100 * s / m, 1) if m else 0.0 for c, (s, m) in tot.items()}


def all_reasons(records: list[BatchRecord], pass_mark: float) -> list[list[Reason]]:
    """answer_reasons of every record, with the candidates' percents."""
    pct = candidate_percents(records)
    return [answer_reasons(r, pct[r.candidate], pass_mark) for r in records]


def review_queue(reasons: list[list[Reason]], reviewed: set[int], limit: int | None = None) -> list[QueueItem]:
    """Answers with a reason and no decision yet, most in need first (ties: input order)."""
    items = [QueueItem(index=i, priority=priority(rs), reasons=rs)
             for i, rs in enumerate(reasons) if rs and i not in reviewed]
    items.sort(key=lambda q: (-q.priority, q.index))
    return items if limit is None else items[:limit]
