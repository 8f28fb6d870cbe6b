"""Embedding similarity: whole answer against the model answer (a scorer), and per concept."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from grader.models import Concept, Signal
from grader.scoring.evidence import Evidence
from grader.scoring.prepare import Prepared

NAME = "similarity"

# Raw cosine is not 0 for unrelated texts: with all-MiniLM-L6-v2, the model answers of
# *other* questions of this bank sit at 0.22 on average against a model answer (90th
# percentile 0.41), correct answers in other words at 0.76-0.95 (mean 0.85).  The
# whole-answer cosine is mapped linearly from [COS_FLOOR, COS_CEIL] to [0, 1] and clipped
# (see README, "How a score is made").
COS_FLOOR = 0.40
COS_CEIL = 0.80
# A concept put in other words earns partial credit when one answer sentence is this close
# to the concept's description: nothing at CONCEPT_FLOOR, full partial credit at
# CONCEPT_CEIL.  Meaning alone never earns more than SEMANTIC_CONCEPT_MAX of a concept.
CONCEPT_FLOOR = 0.50
CONCEPT_CEIL = 0.75
SEMANTIC_CONCEPT_MAX = 0.8


class Stacked:
    """Texts' vectors as matrix rows, each tuple of texts stacked once per scoring call: a
    question's statements and exemplars are the same for every one of its answers."""

    def __init__(self, vectors: Mapping[str, np.ndarray]) -> None:
        self.vectors = vectors
        self._made: dict[tuple[str, ...], np.ndarray] = {}

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        key = tuple(texts)
        m = self._made.get(key)
        if m is None:
            m = self._made[key] = np.stack([self.vectors[t] for t in key])
        return m


def concept_closeness(concepts: Sequence[Concept], stacked: Stacked, vecs: np.ndarray) -> np.ndarray:
    """(concepts, rows of vecs) cosines: each row's closeness to each concept's description or
    its closest plain-words statement."""
    return np.stack([(stacked((c.description, *c.statements)) @ vecs.T).max(axis=0) for c in concepts])


def ramp(x: float, lo: float, hi: float) -> float:
    """Linear map of x from [lo, hi] to [0, 1], clipped."""
    return float(min(1.0, max(0.0, (x - lo) / (hi - lo))))


def calibrated_cosine(cos: float) -> float:
    """Whole-answer cosine mapped to 0..1."""
    return ramp(cos, COS_FLOOR, COS_CEIL)


def concept_similarities(sentence_vecs: np.ndarray, concept_vecs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each concept, the best cosine over answer sentences and which sentence gave it."""
    if sentence_vecs.size == 0:
        n = concept_vecs.shape[0]
        return np.zeros(n, dtype=np.float32), np.full(n, -1)
    sims = concept_vecs @ sentence_vecs.T
    return sims.max(axis=1), sims.argmax(axis=1)


def concept_credit(sim: float) -> float:
    """Partial credit a concept earns from meaning alone."""
    return round(SEMANTIC_CONCEPT_MAX * ramp(sim, CONCEPT_FLOOR, CONCEPT_CEIL), 4)


class SimilarityScorer:
    """The whole answer's cosine against the model answer: `semantic_raw`, and `semantic`
    (mapped from [COS_FLOOR, COS_CEIL] to 0..1)."""

    name = NAME

    def texts(self, p: Prepared) -> list[str]:
        """The model answer and the whole answer."""
        return [] if p.empty else [p.item.question.model_answer, p.whole]

    def score(self, answers: Sequence[Prepared], vectors: Mapping[str, np.ndarray]) -> list[Evidence]:
        """One Evidence per answer (none for an empty one)."""
        out = []
        for p in answers:
            if p.empty:
                out.append(Evidence())
                continue
            # Rounded so that batch composition (padding) cannot flip a result's last digit.
            raw = round(float(vectors[p.whole] @ vectors[p.item.question.model_answer]), 4)
            out.append(Evidence(signals=[
                Signal(name="semantic_raw", value=raw, scorer=NAME, explanation="cosine against the model answer"),
                Signal(name="semantic", value=calibrated_cosine(raw), scorer=NAME,
                       explanation=f"cosine {raw:.2f} mapped from [{COS_FLOOR}, {COS_CEIL}] to 0..1"),
            ]))
        return out
