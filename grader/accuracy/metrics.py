"""Agreement metrics between predicted and human scores (on the file's own scale).

Metrics are on the file's own score scale (points, not fractions):

- pearson, spearman: scipy.stats over all answers pooled, on score / max_score (a file
  that mixes maxima would otherwise earn correlation from the maxima alone; with one
  maximum per file it is the same as on points).
- qwk: sklearn's cohen_kappa_score(weights="quadratic") on the file's scale: whole points
  when every human score and maximum is a whole number, else half points.  Predictions
  (fraction x max_score) and human scores are both rounded to the nearest step (halves
  round up) and clipped to 0..max_score before the kappa; nothing else is rounded.
- rmse, mae: sklearn, in points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel

from grader.models import GradedRow


class Metrics(BaseModel):
    n: int
    pearson: float | None
    spearman: float | None
    qwk: float | None
    rmse: float
    mae: float


class QuestionMetrics(BaseModel):
    question_id: str
    n: int
    max_score: float
    human_mean: float
    predicted_mean: float
    pearson: float | None
    mae: float



def scale_step(rows: Sequence[GradedRow]) -> float:
    """1 when every score and maximum is a whole number, else 0.5."""
    return step_for([r.score for r in rows], [r.max_score for r in rows])


def step_for(scores, max_scores) -> float:
    """1 when every score and maximum given is a whole number, else 0.5."""
    vals = np.concatenate([np.asarray(scores, dtype=float), np.asarray(max_scores, dtype=float)])
    return 1.0 if np.allclose(vals, np.round(vals)) else 0.5


def to_scale(scores: np.ndarray, max_scores: np.ndarray, step: float) -> np.ndarray:
    """Integer categories: nearest step (halves up), clipped to 0..max_score."""
    cat = np.floor(np.asarray(scores) / step + 0.5 + 1e-9)
    return np.clip(cat, 0, np.floor(np.asarray(max_scores) / step + 1e-9)).astype(int)


def _num(v: float) -> float | None:
    return None if v is None or not math.isfinite(v) else round(float(v), 4)


def metrics(human: np.ndarray, predicted: np.ndarray, max_scores: np.ndarray, step: float) -> Metrics:
    """Agreement of predicted with human scores (both in points)."""
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import cohen_kappa_score, mean_absolute_error, mean_squared_error

    human = np.asarray(human, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    max_scores = np.asarray(max_scores, dtype=float)
    n = len(human)
    # Correlations on fractions of each answer's maximum: in a file that mixes maxima
    # (0.5 to 3.5 points), predicted points correlate with human points through the maxima
    # alone.  With one maximum for the whole file this is the same as on points.
    hf, pf = human / max_scores, predicted / max_scores
    const = n < 2 or np.ptp(hf) == 0 or np.ptp(pf) == 0
    pearson = spearman = float("nan")
    if not const:
        pearson = pearsonr(hf, pf).statistic
        spearman = spearmanr(hf, pf).statistic
    h, p = to_scale(human, max_scores, step), to_scale(predicted, max_scores, step)
    if len(set(h) | set(p)) > 1:
        qwk = cohen_kappa_score(h, p, weights="quadratic")
    else:
        qwk = 1.0 if n else float("nan")
    return Metrics(
        n=n, pearson=_num(pearson), spearman=_num(spearman), qwk=_num(qwk),
        rmse=round(float(math.sqrt(mean_squared_error(human, predicted))), 4),
        mae=round(float(mean_absolute_error(human, predicted)), 4),
    )


def per_question(rows: Sequence[GradedRow], predicted: np.ndarray) -> list[QuestionMetrics]:
    from scipy.stats import pearsonr

    out = []
    by_q: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_q.setdefault(r.question_id, []).append(i)
    for qid, idx in by_q.items():
        h = np.array([rows[i].score for i in idx])
        p = predicted[idx]
        r = None
        if len(idx) > 2 and np.ptp(h) > 0 and np.ptp(p) > 0:
            r = _num(pearsonr(h, p).statistic)
        out.append(QuestionMetrics(
            question_id=qid, n=len(idx), max_score=max(rows[i].max_score for i in idx),
            human_mean=round(float(h.mean()), 4), predicted_mean=round(float(p.mean()), 4),
            pearson=r, mae=round(float(np.abs(h - p).mean()), 4),
        ))
    return out
