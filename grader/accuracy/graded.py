"""Human-graded answers as evaluate and calibrate use them: their signals, weights and empties
(files are read by grader.graded_file)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from grader.embedding import Embedder
from grader.models import GradedRow
from grader.scoring.signals import Pair, compute_signals

Progress = Callable[[int, int], None]


def empty_mask(rows: Sequence[GradedRow]) -> np.ndarray:
    return np.array([not r.answer.strip() for r in rows])


def question_weights(groups: Sequence[str]) -> np.ndarray:
    """Sample weights giving every question the same total weight (mean weight 1), so that
    a question with many answers does not dominate a fit."""
    _, inv, counts = np.unique(np.asarray(groups), return_inverse=True, return_counts=True)
    w = 1.0 / counts[inv]
    return w * len(w) / w.sum()


def signals_for(rows: Sequence[GradedRow], embedder: Embedder, progress: Progress | None = None,
                second: Embedder | None = None) -> np.ndarray:
    """The signal matrix (columns grader.scoring.signals.SIGNALS) of every row; the alt_ columns
    from `second`, NaN without it."""
    pairs = [Pair(r.question, r.reference_answer, r.answer) for r in rows]
    return compute_signals(pairs, embedder, progress=progress, groups=[r.question_id for r in rows],
                           second=second)
