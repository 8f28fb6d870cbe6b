"""How the signals become one score, a band and flags (documented in the README)."""

from __future__ import annotations

from grader.models import (
    Components,
    ConceptResult,
    GradeResult,
    MisconceptionResult,
    Question,
    Rubric,
    Weights,
)
from grader.scoring import flags as F

# An answer that misses a required concept can at best be "acceptable".
REQUIRED_CAP = 0.6
# A bare list of terms shows vocabulary, not understanding: its rubric signal counts half.
KEYWORD_LIST_FACTOR = 0.5
STRONG = 0.75
ACCEPTABLE = 0.5


def band_for(fraction: float) -> str:
    """strong (>= 75%), acceptable (>= 50%) or weak."""
    if fraction >= STRONG:
        return "strong"
    if fraction >= ACCEPTABLE:
        return "acceptable"
    return "weak"


def keyword_component(concepts: list[ConceptResult]) -> float:
    """Weighted share of the rubric's concepts the answer showed."""
    total = sum(c.weight for c in concepts)
    if total <= 0:
        return 0.0
    return sum(c.weight * c.credit for c in concepts) / total


def combine(
    question: Question,
    rubric: Rubric | None,
    concepts: list[ConceptResult],
    misconceptions: list[MisconceptionResult],
    semantic: float,
    semantic_raw: float,
    weights: Weights,
    flags: list[str],
    model: str,
) -> GradeResult:
    """Weighted sum of the rubric and semantic signals, capped and penalised."""
    points = rubric.points if rubric else 10.0
    if rubric and rubric.weights:
        weights = rubric.weights
    wk, ws = weights.normalised() if concepts else (0.0, 1.0)
    kw = keyword_component(concepts)
    flags = list(flags)
    kw_used = kw * KEYWORD_LIST_FACTOR if F.KEYWORD_LIST in flags else kw
    fraction = wk * kw_used + ws * semantic
    if any(c.required and c.credit < 0.5 for c in concepts):
        fraction = min(fraction, REQUIRED_CAP)
        flags.append(F.REQUIRED_MISSING)
    score = fraction * points - sum(m.penalty for m in misconceptions)
    score = round(min(points, max(0.0, score)), 2)
    percent = round(100 * score / points, 1)
    return GradeResult(
        question_id=question.id,
        question=question.question,
        score=score,
        max_score=points,
        percent=percent,
        band=band_for(score / points),
        components=Components(
            keywords=round(kw, 4), semantic=round(semantic, 4), semantic_raw=round(semantic_raw, 4)
        ),
        concepts=concepts,
        misconceptions=misconceptions,
        flags=flags,
        model=model,
    )


def no_answer(question: Question, rubric: Rubric | None, model: str) -> GradeResult:
    """The result for an empty or whitespace answer: 0, every concept missed."""
    concepts = [
        ConceptResult(
            name=c.name, weight=c.weight, required=c.required, matched=False, credit=0.0,
            via="none", hint=c.hint,
        )
        for c in (rubric.concepts if rubric else [])
    ]
    return GradeResult(
        question_id=question.id,
        question=question.question,
        score=0.0,
        max_score=rubric.points if rubric else 10.0,
        percent=0.0,
        band="no answer",
        components=Components(keywords=0.0, semantic=0.0, semantic_raw=0.0),
        concepts=concepts,
        misconceptions=[],
        flags=[F.NO_ANSWER],
        model=model,
    )
