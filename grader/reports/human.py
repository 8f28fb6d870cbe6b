"""Human grades in the batch reports: a reviewer's final score replaces grader's, marked as such.

The decisions themselves live in the review database (grader/batch/decisions.py); this module only
holds the shapes the reports read and the merge, so the reports need nothing of the app."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Literal

from pydantic import BaseModel, Field

from grader.models import BatchRecord
from grader.scoring.combine import band_for

Verdict = Literal["advance", "reject", "hold"]


class HumanGrade(BaseModel):
    """An answer's final score as a person set it."""

    score: float
    grader_score: float | None = Field(default=None, description="The score grader gave (set by the report).")
    reviewer: str
    at: str
    kind: str = Field(description="score, accept, llm-accept, llm-reject or group.")
    note: str = ""
    conflict: bool = Field(default=False, description="Set over another reviewer's decision it had not seen.")


class HumanReview(BaseModel):
    """What the reports need of the decisions: human grades by answer key, verdicts by candidate."""

    grades: dict[str, HumanGrade] = Field(default_factory=dict, description="By 'candidate\\x1fquestion_id'.")
    verdicts: dict[str, Verdict] = Field(default_factory=dict)


def with_human_score(r: BatchRecord, g: HumanGrade) -> BatchRecord:
    """The record with the human's score (percent and band follow it); everything else as graded."""
    pct = round(100 * g.score / r.max_score, 1) if r.max_score else 0.0
    band = r.band if r.band == "no answer" and g.score == 0 else band_for(g.score / r.max_score if r.max_score else 0)
    return r.model_copy(update={"score": g.score, "percent": pct, "band": band})


def apply_human(records: Iterable[BatchRecord], human: HumanReview | None) -> Iterator[BatchRecord]:
    """Records with the human's final score where there is one."""
    for r in records:
        g = human.grades.get(f"{r.candidate}\x1f{r.question_id}") if human else None
        yield r if g is None else with_human_score(r, g)
