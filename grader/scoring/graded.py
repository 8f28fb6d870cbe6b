"""Learning from graded answers of the same question (`--graded`): the zero-shot score moved by
what the question's graded answers say.

For an answer with zero-shot fraction z, a question with n graded answers (grades y, their own
zero-shot fractions z_g) gives three features, each damped by r = n / (n + SHRINK) so that a
question with few graded answers falls back smoothly to z:

- offset:     r * (mean(y) - mean(z_g))   how far the graders sit from the zero-shot scores here;
- neighbours: r * (vote - z)              the nearest graded answers' grades (closeness-weighted,
                                          as grader.scoring.exemplars votes, in the view the
                                          zero-shot score embedded: `view_temperature`);
- residuals:  r * vote of (y - z_g)       how far the zero-shot score missed on the nearest
                                          graded answers (alike answers are mis-scored alike).

The fraction is z + a*offset + b*neighbours + c*residuals, clipped to 0..1. The
coefficients (none below zero) are one small least-squares fit over every graded answer of
every question, each predicted from the others of its question (leave-one-out), so nothing is
fitted on the answers being scored; with too few graded answers for a fit, PRIOR holds.
Deterministic: same graded answers, same coefficients.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from grader.scoring.exemplars import TEMPERATURE
from grader.scoring.exemplars import vote as exemplar_vote

# Graded answers a question needs before its own graders count for half.
SHRINK = 2.0
# Fewer graded answers in all than this: no fit, the prior coefficients.
MIN_FIT = 12
# A ridge on the coefficients, toward the prior: a fit on a few dozen answers stays sensible.
RIDGE = 1.0
PRIOR = (0.8, 0.3, 0.0)  # offset, neighbours, residuals
# The second embedding model's cosines between answers of one question spread about a quarter
# as wide as the first's, so its vote needs a sharper temperature to weigh closeness alike
# (0.01 to 0.03 measured the same; docs/experiments.md, 2026-12-05 and 2026-12-07).
SECOND_VIEW_TEMPERATURE = 0.02


def view_temperature(second_view: bool) -> float:
    """The vote temperature of answers compared in the second model's view, or the first's."""
    return SECOND_VIEW_TEMPERATURE if second_view else TEMPERATURE


class GradedSet(BaseModel):
    """One question's graded answers: whole-answer vectors, human grades and zero-shot
    fractions (both 0..1), and the answers and their points for explanations."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    vectors: np.ndarray = Field(description="(n, dim) unit vectors of the whole answers.")
    grades: np.ndarray = Field(description="(n,) human score / max_score.")
    zero_shot: np.ndarray = Field(description="(n,) the pipeline's zero-shot fraction of each.")
    temperature: float = Field(default=TEMPERATURE, description="The vote temperature of the view `vectors` are in.")
    answers: list[str] = Field(default_factory=list)
    scores: list[float] = Field(default_factory=list)
    max_scores: list[float] = Field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.grades)

    def without(self, i: int) -> "GradedSet":
        """The set less its i-th answer (for leave-one-out)."""
        keep = np.arange(self.n) != i
        return GradedSet(vectors=self.vectors[keep], grades=self.grades[keep], zero_shot=self.zero_shot[keep],
                         temperature=self.temperature)


class Blend(BaseModel):
    """The fitted coefficients of offset, neighbours and residuals (module docstring)."""

    offset: float
    neighbours: float
    residuals: float
    fitted_on: int = Field(description="Graded answers the coefficients were fitted on (0: the prior).")

    def apply(self, z: np.ndarray, feats: np.ndarray) -> np.ndarray:
        """Fractions for zero-shot fractions z and their features (rows of offset, neighbours, residuals)."""
        coef = np.array([self.offset, self.neighbours, self.residuals])
        return np.clip(z + feats @ coef, 0.0, 1.0)


class Neighbours(BaseModel):
    """What one answer's graded answers say: the closeness-weighted vote and the nearest one."""

    vote: float
    nearest: int
    similarity: float


def vote(sims: np.ndarray, grades: np.ndarray, temperature: float = TEMPERATURE) -> Neighbours:
    """The nearest graded answers' closeness-weighted grade, as the exemplars vote, and the nearest."""
    fraction, k = exemplar_vote(sims, grades, temperature)
    return Neighbours(vote=fraction, nearest=k, similarity=float(sims[k]))


def features(z: np.ndarray, vectors: np.ndarray, graded: GradedSet | None) -> tuple[np.ndarray, list[Neighbours | None]]:
    """(len(z), 3) features of answers (zero-shot z, whole-answer vectors; a zero row stands for
    an empty answer) against their question's graded set, and each answer's neighbours."""
    out = np.zeros((len(z), len(PRIOR)))
    if graded is None or graded.n == 0 or len(z) == 0:
        return out, [None] * len(z)
    r = graded.n / (graded.n + SHRINK)
    if vectors.shape[1] == graded.vectors.shape[1]:
        sims = np.round(vectors @ graded.vectors.T, 4)  # rounded: the same order on every machine
    else:  # one side is empty answers only (answer_matrix's zero rows of width 1): close to nothing
        sims = np.zeros((len(z), graded.n))
    near = [vote(s, graded.grades, graded.temperature) for s in sims]
    zg = float(graded.zero_shot.mean())
    out[:, 0] = r * (float(graded.grades.mean()) - zg)
    out[:, 1] = r * (np.array([nb.vote for nb in near]) - z)
    resid = graded.grades - graded.zero_shot
    out[:, 2] = r * np.array([vote(s, resid, graded.temperature).vote for s in sims])
    return out, near


def loo_features(graded: GradedSet) -> np.ndarray:
    """Each graded answer's features from the other graded answers of its question."""
    if graded.n < 2:
        return np.zeros((graded.n, len(PRIOR)))
    return np.vstack([features(graded.zero_shot[i : i + 1], graded.vectors[i : i + 1], graded.without(i))[0]
                      for i in range(graded.n)])


def fit_blend(sets: Mapping[str, GradedSet]) -> Blend:
    """The coefficients, fitted leave-one-out on every question's graded answers (each question
    weighing the same), ridge toward PRIOR, none below zero; PRIOR itself with fewer than MIN_FIT
    answers."""
    from scipy.optimize import nnls

    usable = [g for g in sets.values() if g.n >= 2]
    total = sum(g.n for g in usable)
    if total < MIN_FIT:
        return Blend(offset=PRIOR[0], neighbours=PRIOR[1], residuals=PRIOR[2], fitted_on=0)
    X = np.vstack([loo_features(g) for g in usable])
    y = np.concatenate([g.grades - g.zero_shot for g in usable])
    w = np.concatenate([np.full(g.n, 1.0 / g.n) for g in usable])
    w *= len(w) / w.sum()
    # Weighted ridge toward the prior, as least squares over the rows and RIDGE pulls; each
    # feature is evidence in its own direction, so a negative weight is a fit to noise (with 3
    # graded answers a question the residuals' weight swung between -0.27 and +0.14 by split).
    sw = np.sqrt(w)
    A = np.vstack([X * sw[:, None], np.sqrt(RIDGE) * np.eye(len(PRIOR))])
    b, _ = nnls(A, np.concatenate([y * sw, np.sqrt(RIDGE) * np.array(PRIOR)]))
    return Blend(offset=round(float(b[0]), 4), neighbours=round(float(b[1]), 4), residuals=round(float(b[2]), 4),
                 fitted_on=total)


def predict(blend: Blend, z: Sequence[float] | np.ndarray, vectors: np.ndarray,
            graded: GradedSet | None) -> tuple[np.ndarray, list[Neighbours | None]]:
    """Fractions of answers of one question learned from its graded set (z where it has none)."""
    z = np.asarray(z, dtype=float)
    feats, near = features(z, vectors, graded)
    return (z if graded is None or graded.n == 0 else blend.apply(z, feats)), near


def answer_matrix(vectors: Sequence[np.ndarray | None]) -> np.ndarray:
    """Whole-answer vectors as rows, an empty answer (None) as a zero row: close to nothing."""
    dim = next((len(v) for v in vectors if v is not None), 1)
    zero = np.zeros(dim, dtype=np.float32)
    return np.stack([zero if v is None else v for v in vectors]) if len(vectors) else np.zeros((0, dim), np.float32)


def graded_sets(question_ids: Sequence[str], grades: np.ndarray, z: np.ndarray, vectors: np.ndarray,
                answers: Sequence[str], scores: Sequence[float], max_scores: Sequence[float],
                idx: Sequence[int] | None = None,
                temperatures: Sequence[float] | None = None) -> dict[str, GradedSet]:
    """The graded sets of the answers at idx (all by default), by question id; `temperatures`
    (per answer, one view per question) where the vectors are not all in the first model's view."""
    by_q: dict[str, list[int]] = {}
    for i in (range(len(question_ids)) if idx is None else idx):
        by_q.setdefault(question_ids[i], []).append(i)
    return {q: GradedSet(vectors=vectors[ii], grades=grades[ii], zero_shot=z[ii], answers=[answers[i] for i in ii],
                         scores=[scores[i] for i in ii], max_scores=[max_scores[i] for i in ii],
                         temperature=TEMPERATURE if temperatures is None else float(temperatures[ii[0]]))
            for q, ii in by_q.items()}


class Learned(BaseModel):
    """What a Grader learned from graded answers: each question's graded set and the blend."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    sets: dict[str, GradedSet]
    blend: Blend
    identity: str = Field(description="How many graded answers, and a hash of them: recorded in every result.")

    @property
    def size(self) -> int:
        return sum(g.n for g in self.sets.values())


def identity(question_ids: Sequence[str], answers: Sequence[str], scores: Sequence[float],
             max_scores: Sequence[float]) -> str:
    """Names a set of graded answers by their content: the same answers, the same name."""
    import hashlib

    h = hashlib.sha256()
    for row in sorted(zip(question_ids, answers, scores, max_scores)):
        h.update(repr(row).encode("utf-8", "surrogatepass"))
    return f"{len(answers)} graded answers sha256:{h.hexdigest()[:12]}"
