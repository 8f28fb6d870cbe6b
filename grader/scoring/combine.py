"""The one combiner: how the scorers' signals become a score, a band and flags.

A mix turns an answer's signals into a fraction of the maximum: the rubric mix (a fixed
weighting of the rubric's concept share and the similarity to the model answer) or a
calibration fitted on human grades; both are `Mix` objects.  Then the policy, the same for
every mix and every command:

- an answer close to a graded exemplar is pulled toward the nearest exemplars' grade, the
  more the closer it is (`exemplar_pull`);
- a required concept absent by terms and by meaning caps the fraction at REQUIRED_CAP (flag
  "missing required concept");
- each misconception stated subtracts its penalty in points;
- the score is clamped to 0..max and rounded to 2 decimals; its band follows from it;
- an LLM review moves the fraction by at most a bounded shift (`llm_shift`), never up for
  an answer suspected of injection.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from grader.models import (
    Components, ConceptResult, Contribution, GradeResult, NearestGraded, Question, Rubric, Weights,
)
from grader.scoring import flags as F
from grader.scoring.calibration import MODEL_SIGNAL, ON_TOPIC, Calibration
from grader.scoring.evidence import Evidence
from grader.scoring.prepare import Prepared
from grader.scoring.rubric import CLAIMED, keyword_share
from grader.scoring.signals import SIGNALS
from grader.scoring.similarity import ramp

# An answer that misses a required concept can at best be "acceptable".
REQUIRED_CAP = 0.6
# A bare list of terms shows vocabulary, not understanding: its rubric signal counts half.
KEYWORD_LIST_FACTOR = 0.5
# Pulled toward the graded exemplars' grade: nothing at cosine 0.80 or below to the nearest
# exemplar, EXEMPLAR_PULL_MAX of the way at 0.95 and above.
EXEMPLAR_PULL_MAX = 0.3
EXEMPLAR_PULL_RAMP = (0.80, 0.95)
STRONG = 0.75
ACCEPTABLE = 0.5


def band_for(fraction: float) -> str:
    """strong (>= 75%), acceptable (>= 50%) or weak."""
    if fraction >= STRONG:
        return "strong"
    if fraction >= ACCEPTABLE:
        return "acceptable"
    return "weak"


def misses_required(concepts: Sequence[ConceptResult]) -> bool:
    """Whether a required concept is absent: no terms, and too little meaning to count as shown."""
    return any(c.required and not c.matched for c in concepts)


def exemplar_pull(similarity: float) -> float:
    """How far toward the exemplars' grade an answer this close to the nearest one is pulled."""
    return EXEMPLAR_PULL_MAX * ramp(similarity, *EXEMPLAR_PULL_RAMP)


def capped(fraction: float, required_missing: bool) -> float:
    """The fraction under the required-concept cap."""
    return min(fraction, REQUIRED_CAP) if required_missing else fraction


def points_for(fraction: float, points: float, penalties: float) -> float:
    """A fraction of the maximum as points, less the misconception penalties, clamped and rounded."""
    return round(min(points, max(0.0, fraction * points - penalties)), 2)


def llm_shift(deterministic: float, llm: float, weight: float, max_shift: float, *,
              injected: bool, inflated: bool) -> float:
    """How far an LLM review moves the fraction: weight x (llm - deterministic), at most
    max_shift either way, never up for a suspected injection, nothing for a review whose
    own score exceeds what its verified quotes support."""
    if inflated:
        return 0.0
    shift = max(-max_shift, min(max_shift, weight * (llm - deterministic)))
    return min(shift, 0.0) if injected else shift


# --------------------------------------------------------------------------- mixes


class Mix(Protocol):
    """Turns each answer's signals into a fraction 0..1, with each signal's contribution.
    `reference_signals` says whether it reads the reference-answer signals (SIGNALS)."""

    name: str
    reference_signals: bool

    def fractions(self, answers: Sequence[Prepared], evidence: Sequence[Evidence]) -> list[tuple[float, list[Contribution]]]: ...


class RubricMix:
    """The fixed mix: keywords x wk + semantic x claimed x ws (the rubric's own weights, else
    the global ones; similarity alone without a rubric), the keyword share halved for a bare
    list of terms; `claimed` is the share of the answer said as firm claims that state no
    misconception."""

    name = "rubric"
    reference_signals = False

    def __init__(self, weights: Weights | None = None):
        self.weights = weights or Weights()

    def fractions(self, answers: Sequence[Prepared], evidence: Sequence[Evidence]) -> list[tuple[float, list[Contribution]]]:
        """The weighted sum of each answer's rubric and similarity signals."""
        out = []
        for p, ev in zip(answers, evidence):
            rubric = p.item.rubric
            weights = rubric.weights if rubric and rubric.weights else self.weights
            wk, ws = weights.normalised() if ev.concepts else (0.0, 1.0)
            kw = keyword_share(ev.concepts)
            if F.KEYWORD_LIST in p.flags:
                kw *= KEYWORD_LIST_FACTOR
            sem = ev.value("semantic", 0.0)
            # Likeness to a right answer counts only for what the answer claims: a guess or a
            # wrong statement in the right vocabulary earns nothing by terms, nor by likeness.
            claimed = ev.value(CLAIMED, 1.0)  # the rubric scorer's; none without a rubric
            contributions = [Contribution(signal="keywords", value=round(kw, 4), effect=round(wk * kw, 4)),
                             Contribution(signal="semantic", value=round(sem, 4), effect=round(ws * sem, 4))]
            if claimed < 1.0:
                contributions.append(Contribution(signal=CLAIMED, value=round(claimed, 4),
                                                  effect=round(-ws * sem * (1.0 - claimed), 4)))
            out.append((wk * kw + ws * sem * claimed, [c for c in contributions if c.effect or c.value]))
        return out


class CalibratedMix:
    """A calibration fitted on human grades, over the reference-answer signals (and the
    trained model's score where it was fitted with one).  The development sets hold almost
    no off-topic answers, so a calibration alone is generous to them: its fraction is gated
    by the whole-answer cosine (ON_TOPIC ramp: 0 at or below its floor, untouched at or
    above its ceiling)."""

    name = "calibration"
    reference_signals = True

    def __init__(self, calibration: Calibration):
        self.calibration = calibration

    def fractions(self, answers: Sequence[Prepared], evidence: Sequence[Evidence]) -> list[tuple[float, list[Contribution]]]:
        """The calibration's prediction for every answer, gated by the cosine."""
        names = [*SIGNALS, MODEL_SIGNAL]
        X = np.array([[ev.value(n) for n in names] for ev in evidence], dtype=float).reshape(len(evidence), len(names))
        frac = self.calibration.predict(X, names) if len(evidence) else np.zeros(0)
        out = []
        for row, f, ev in zip(X, frac, evidence):
            gate = ramp(ev.value("semantic_raw", 0.0), *ON_TOPIC)
            contributions = [Contribution(signal=n, value=round(v, 4), effect=round(e, 4))
                             for n, v, e in self.calibration.explain(row, names)]
            if gate < 1.0:
                contributions.append(Contribution(signal="on_topic_gate", value=round(gate, 4),
                                                  effect=round(float(f) * (gate - 1.0), 4)))
            out.append((float(f) * gate, contributions))
        return out


# --------------------------------------------------------------------------- results


def combine(p: Prepared, evidence: Evidence, fraction: float, contributions: list[Contribution],
            mix: str, model: str) -> GradeResult:
    """The result of one answer: the mix's fraction under the policy (module docstring)."""
    q, rubric = p.item.question, p.item.rubric
    points = rubric.points if rubric else 10.0
    flags = list(p.flags) + [f for f in evidence.flags if f not in p.flags]
    mixed = fraction
    exemplar = evidence.value("exemplar")
    if math.isfinite(exemplar):
        w = exemplar_pull(evidence.value("exemplar_sim", 0.0))
        if w > 0:
            fraction = (1 - w) * fraction + w * exemplar
            contributions = contributions + [Contribution(signal="exemplar", value=round(exemplar, 4),
                                                          effect=round(fraction - mixed, 4))]
    missing = misses_required(evidence.concepts)
    if missing:
        flags.append(F.REQUIRED_MISSING)
    score = points_for(capped(fraction, missing), points, sum(m.penalty for m in evidence.misconceptions))
    trained = evidence.value(MODEL_SIGNAL)
    contributions = sorted(contributions, key=lambda c: -abs(c.effect))
    return GradeResult(
        question_id=q.id,
        question=q.question,
        score=score,
        max_score=points,
        percent=round(100 * score / points, 1),
        band=band_for(score / points),
        components=Components(
            keywords=round(keyword_share(evidence.concepts), 4),
            semantic=round(evidence.value("semantic", 0.0), 4),
            semantic_raw=round(evidence.value("semantic_raw", 0.0), 4),
            trained=trained if math.isfinite(trained) else None,
            mix=mix, fraction=round(float(fraction), 4), contributions=contributions,
        ),
        concepts=evidence.concepts,
        misconceptions=evidence.misconceptions,
        flags=flags,
        nearest_graded=evidence.nearest,
        model=model,
    )


def no_answer(question: Question, rubric: Rubric | None, model: str, mix: str = "rubric") -> GradeResult:
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
        components=Components(keywords=0.0, semantic=0.0, semantic_raw=0.0, mix=mix, fraction=0.0),
        concepts=concepts,
        misconceptions=[],
        flags=[F.NO_ANSWER],
        model=model,
    )


def learned(result: GradeResult, fraction: float, vote: float, nearest: NearestGraded) -> GradeResult:
    """The result moved to the fraction learned from the question's graded answers
    (grader.scoring.graded), which start from this result's score: penalties and caps are in it."""
    points = result.max_score
    score = points_for(fraction, points, 0.0)
    moved = Contribution(signal="graded", value=round(vote, 4), effect=round(score / points - result.score / points, 4))
    contributions = sorted(result.components.contributions + [moved], key=lambda c: -abs(c.effect))
    return result.model_copy(update={
        "score": score, "percent": round(100 * score / points, 1), "band": band_for(score / points),
        "components": result.components.model_copy(update={"contributions": contributions}),
        "nearest_graded": nearest,
    })
