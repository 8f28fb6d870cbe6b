"""The exemplar scorer: an answer against its question's graded example answers.

The nearest exemplars by whole-answer cosine vote on a grade (weighted by closeness); the
combiner pulls the score toward that grade as far as the nearest one is close
(grader.scoring.combine.exemplar_pull).  The sentences of well-graded `other-words` exemplars
also say the rubric's concepts in words candidates use: the rubric scorer reads each as a
plain-words statement of the concept it is closest to (`lent_statements`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from grader.models import NearestGraded, Rubric, Signal
from grader.scoring.evidence import Evidence
from grader.scoring.prepare import Prepared
from grader.scoring.similarity import Stacked, concept_closeness
from grader.text import analyse, clean

NAME = "exemplars"
# How many nearest exemplars vote, and how sharply closeness weighs their votes: a vote
# counts exp((cos - best) / TEMPERATURE), so one 0.05 further away counts a third.
NEIGHBOURS = 3
TEMPERATURE = 0.05
# `other-words` exemplars graded at least this share of the points lend their sentences to the concepts;
# a sentence joins the statements of the concept it is closest to, if at least this close
# (the floor of meaning credit: closer to nothing, it says none of them).
WELL_GRADED = 0.7
STATEMENT_FLOOR = 0.5


def well_graded_sentences(rubric: Rubric) -> list[str]:
    """The sentences of the rubric's `other-words` exemplars graded at least WELL_GRADED of its points."""
    return [s.text for e in rubric.exemplars if e.kind == "other-words" and e.score >= WELL_GRADED * rubric.points
            for s in analyse(e.answer)]


def lent_statements(rubric: Rubric, stacked: Stacked) -> list[tuple[str, ...]]:
    """For each concept, the well-graded exemplar sentences closest to it of all the concepts
    (to its description or statements, cosine >= STATEMENT_FLOOR)."""
    sentences = list(dict.fromkeys(well_graded_sentences(rubric)))
    if not sentences:
        return [()] * len(rubric.concepts)
    lent: list[list[str]] = [[] for _ in rubric.concepts]
    closeness = concept_closeness(rubric.concepts, stacked, stacked(sentences))
    closest = closeness.argmax(axis=0)
    for j, text in enumerate(sentences):
        i = int(closest[j])
        if closeness[i, j] >= STATEMENT_FLOOR:
            lent[i].append(text)
    return [tuple(x) for x in lent]


def exemplar_text(answer: str) -> str:
    """An exemplar answer as it is embedded (as whole answers are)."""
    return clean(answer)


def vote(sims: np.ndarray, grades: np.ndarray, temperature: float = TEMPERATURE) -> tuple[float, int]:
    """The closeness-weighted grade (a fraction) of the nearest exemplars, and the nearest's index
    (ties in input order)."""
    order = np.argsort(-sims, kind="stable")[:NEIGHBOURS]
    w = np.exp((sims[order] - sims[order[0]]) / temperature)
    return float(w @ grades[order] / w.sum()), int(order[0])


class ExemplarScorer:
    """Signals `exemplar` (the nearest exemplars' grade, 0..1) and `exemplar_sim` (the cosine to
    the nearest), explained by the nearest exemplar and its grade."""

    name = NAME

    def texts(self, p: Prepared) -> list[str]:
        """The whole answer and every exemplar of its question."""
        rubric = p.item.rubric
        if p.empty or rubric is None or not rubric.exemplars:
            return []
        return [p.whole] + [exemplar_text(e.answer) for e in rubric.exemplars]

    def score(self, answers: Sequence[Prepared], vectors: Mapping[str, np.ndarray]) -> list[Evidence]:
        """One Evidence per answer (none without exemplars)."""
        stacked = Stacked(vectors)
        return [self._one(p, vectors, stacked) for p in answers]

    def _one(self, p: Prepared, vec: Mapping[str, np.ndarray], stacked: Stacked) -> Evidence:
        rubric = p.item.rubric
        if p.empty or rubric is None or not rubric.exemplars:
            return Evidence()
        ex = rubric.exemplars
        E = stacked([exemplar_text(e.answer) for e in ex])
        sims = np.round(E @ vec[p.whole], 4)
        grades = np.array([e.score / rubric.points for e in ex])
        fraction, k = vote(sims, grades)
        near = ex[k]
        nearest = NearestGraded(source="exemplar", score=near.score, max_score=rubric.points,
                                similarity=round(float(sims[k]), 4), answer=near.answer, reason=near.reason)
        why = f"closest to a graded answer that scored {near.score:g}/{rubric.points:g} (cosine {sims[k]:.2f})"
        return Evidence(signals=[
            Signal(name="exemplar", value=round(fraction, 4), scorer=NAME, explanation=why),
            Signal(name="exemplar_sim", value=round(float(sims[k]), 4), scorer=NAME,
                   explanation=f"cosine to the nearest of {len(ex)} graded exemplars"),
        ], nearest=nearest)
