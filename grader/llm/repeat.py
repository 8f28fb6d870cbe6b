"""`--repeat N`: ask the LLM N times per answer (seeds varied, cache bypassed), measure how
much its verdict moves, and score with the median.

Each answer's N reviews are blended one by one (`apply_review`) to see their spread and
bands; the result kept is the blend of the review whose LLM fraction is the median (the
lower median for an even N), so the combiner sees one real review, with its own verified
quotes, never a mixture.  A failed review counts as the score the run would give for it:
the deterministic one.  pass^N is the share of answers whose band is the same all N times.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Protocol

from pydantic import BaseModel, Field

from grader.llm.base import FeedbackProvider, LLMReview, LLMUsage
from grader.llm.blend import apply_review
from grader.llm.concurrency import ReviewItem, reviews_of
from grader.models import GradeResult


class Reseedable(FeedbackProvider, Protocol):
    """A provider that can ask again with another seed and without its cache."""

    def reseeded(self, seed: int) -> FeedbackProvider: ...


class Stability(BaseModel):
    """How stable the LLM's verdicts were over N asks (`--repeat N`)."""

    repeat: int
    answers: int = Field(description="Answers asked N times (empty answers are not asked).")
    pass_n: float | None = Field(description="Share of answers whose band was the same in all N.")
    spread_mean: float | None = Field(description="Mean over answers of max - min blended score, as a fraction.")
    spread_max: float | None
    llm_spread_mean: float | None = Field(description="Mean spread of the LLM's own fraction (valid replies).")


def seeds(base: int, n: int) -> list[int]:
    """The N seeds asked: the configured one first, then the next ones."""
    return [base + k for k in range(n)]


def _summary(result: GradeResult, reviews: list[LLMReview], blends: list[GradeResult]) -> dict:
    fracs = [b.llm.get("fraction") for b, r in zip(blends, reviews) if r.ok and b.llm.get("fraction") is not None]
    scores = [b.score for b in blends]
    return {
        "n": len(reviews),
        "valid": sum(r.ok for r in reviews),
        "seeds": [r.seed for r in reviews],
        "scores": scores,
        "bands": [b.band for b in blends],
        "llm_fractions": fracs,
        "spread": round((max(scores) - min(scores)) / result.max_score, 4) if result.max_score else 0.0,
        "llm_spread": round(max(fracs) - min(fracs), 4) if fracs else None,
        "same_band": len({b.band for b in blends}) == 1,
    }


def median_review(reviews: list[LLMReview], blends: list[GradeResult]) -> int:
    """Index of the review to keep: the valid one whose LLM fraction is the (lower) median;
    the first review when none is valid or none has a fraction."""
    valid = [(b.llm.get("fraction"), k) for k, (r, b) in enumerate(zip(reviews, blends))
             if r.ok and b.llm.get("fraction") is not None]
    if not valid:
        return next((k for k, r in enumerate(reviews) if r.ok), 0)
    m = statistics.median_low([f for f, _ in valid])
    return next(k for f, k in valid if f == m)


def review_repeated(
    items: Sequence[ReviewItem],
    provider: Reseedable,
    n: int,
    concurrency: int = 4,
    progress_callback: Callable[[int, int], None] | None = None,
    params=None,
    base_seed: int = 42,
) -> tuple[list[GradeResult], LLMUsage, Stability]:
    """Review every item `n` times with seeds base_seed.., keep the median review's blend;
    never raises for LLM faults.  Each result's `llm.repeat` holds its N scores and bands."""
    if n < 1:
        raise ValueError("n must be at least 1")
    items = list(items)
    askers = [provider.reseeded(s) for s in seeds(base_seed, n)]
    flat = reviews_of([(askers[k], item, base_seed + k) for item in items for k in range(n)],
                      concurrency, progress_callback)
    reviews = [flat[i * n:(i + 1) * n] for i in range(len(items))]
    usage = LLMUsage()
    out, spreads, llm_spreads, same = [], [], [], []
    for (q, r, a, res), revs in zip(items, reviews):
        for rev in revs:
            usage.add(rev)
        blends = [apply_review(res, rev, r, params) for rev in revs]
        keep = blends[median_review(revs, blends)]
        if revs[0].skipped:
            out.append(keep)
            continue
        summary = _summary(res, revs, blends)
        spreads.append(summary["spread"])
        same.append(summary["same_band"])
        if summary["llm_spread"] is not None:
            llm_spreads.append(summary["llm_spread"])
        out.append(keep.model_copy(update={"llm": {**keep.llm, "repeat": summary}}))
    stability = Stability(
        repeat=n, answers=len(same),
        pass_n=round(sum(same) / len(same), 4) if same else None,
        spread_mean=round(statistics.fmean(spreads), 4) if spreads else None,
        spread_max=round(max(spreads), 4) if spreads else None,
        llm_spread_mean=round(statistics.fmean(llm_spreads), 4) if llm_spreads else None,
    )
    return out, usage, stability
