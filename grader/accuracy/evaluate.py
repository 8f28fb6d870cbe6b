"""Agreement with human graders: grade each graded answer (bank rows as `grade` does, the
others against their own reference answer) and compare, with the metrics of `metrics.py`.

Zero-shot: the calibration given (or the shipped default) applied as it is.  Cross-validated
(`cv`): K folds grouped by question (sklearn GroupKFold), so the calibration that scores an
answer was fitted on other questions of the file only, never on its own question.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from grader.accuracy.fit import fit_calibration
from grader.accuracy.graded import empty_mask, question_weights, signals_for
from grader.accuracy.metrics import Metrics, QuestionMetrics, metrics, per_question, scale_step
from grader.bank import Bank
from grader.embedding import Embedder
from grader.errors import InputError
from grader.models import GradedRow, GradeResult
from grader.scoring.calibration import Calibration
from grader.scoring.pipeline import Grader, Item
from grader.scoring.signals import SIGNALS

Progress = Callable[[int, int], None]


class Prediction(BaseModel):
    """One row's predicted score beside the human one (`evaluate --predictions`)."""

    line: int
    question_id: str
    score: float = Field(description="Bank rows: exactly what `grader grade` gives; else the calibrated points.")
    max_score: float
    human_score: float
    human_max_score: float
    scored_by: Literal["bank", "reference"] = Field(
        description="bank: the bank's question, rubric and the shipped pipeline; reference: the row's own reference answer."
    )
    band: str | None = None


class Evaluation(BaseModel):
    """What `grader evaluate --format json` prints: the headline metrics at the top level
    (cross-validated when `cv_folds` is set, else zero-shot), both figures below."""

    file: str
    mode: str = Field(description="'cv' or 'zero-shot': which figure the top-level metrics are.")
    n: int
    questions: int
    pearson: float | None
    spearman: float | None
    qwk: float | None
    rmse: float
    mae: float
    scale_step: float
    zero_shot: Metrics
    cv: Metrics | None = None
    cv_folds: int | None = None
    calibration: str
    model: str
    bank_rows: int = Field(default=0, description="Rows scored as `grade` scores them (bank question, no reference).")
    bank_mix: str | None = Field(default=None, description="The mix that scored the bank rows.")
    per_question: list[QuestionMetrics]
    seconds: float
    predictions: list[Prediction] = Field(default_factory=list, exclude=True)
    results: dict[int, GradeResult] = Field(
        default_factory=dict, exclude=True, description="Bank rows' results by row index (evaluate --llm reviews them)."
    )


# --------------------------------------------------------------------------- grading


def grouped_folds(groups: Sequence[str], k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """K folds (train, test) with every question's answers on one side only."""
    from sklearn.model_selection import GroupKFold

    groups = np.asarray(groups)
    n_groups = len(set(groups.tolist()))
    if k < 2:
        raise InputError(f"--cv: {k} folds; at least 2 are needed")
    if n_groups < k:
        raise InputError(f"--cv: {k} folds but the file has only {n_groups} questions")
    folds = list(GroupKFold(n_splits=k).split(np.zeros(len(groups)), groups=groups))
    for train, test in folds:
        assert not set(groups[train].tolist()) & set(groups[test].tolist()), "a question is in two folds"
    return folds


def cross_validate(
    X: np.ndarray, rows: Sequence[GradedRow], k: int, template: Calibration,
    names: Sequence[str] = SIGNALS,
) -> np.ndarray:
    """Out-of-fold fractions: each fold scored by a calibration fitted on the other folds,
    with the template's signals and settings (grouped by question; each training question
    weighs the same)."""
    y = np.array([r.score / r.max_score for r in rows])
    groups = [r.question_id for r in rows]
    empty = empty_mask(rows)
    out = np.zeros(len(rows))
    settings = template.refit_settings()
    for train, test in grouped_folds(groups, k):
        keep = train[~empty[train]]
        try:
            cal = fit_calibration(X[keep], y[keep], names, template.model,
                                  weight=question_weights([groups[i] for i in keep]), **settings)
        except InputError as exc:
            raise InputError(f"--cv {k}: a fold has too few answers to fit on ({exc})") from None
        out[test] = cal.predict(X[test], names, empty[test])
    return out


def evaluate(
    rows: Sequence[GradedRow],
    embedder: Embedder,
    calibration: Calibration,
    *,
    cv: int | None = None,
    file: str = "",
    calibration_name: str = "default",
    progress: Progress | None = None,
    X: np.ndarray | None = None,
    names: Sequence[str] = SIGNALS,
    second: Embedder | None = None,
    bank: Bank | None = None,
    grader: Grader | None = None,
) -> Evaluation:
    """Zero-shot agreement, and with `cv` the K-fold figure grouped by question.

    Rows of a bank question without a reference answer of their own are scored by `grader`
    (the pipeline `grade` ships) with the bank's question and rubric, in both figures; the
    other rows by the calibration over their own reference answer (`X`, columns `names`,
    when the signals are already computed; `second` for a calibration with a second view).
    """
    t0 = time.perf_counter()
    on_bank = [i for i, r in enumerate(rows) if r.from_bank]
    if on_bank and grader is None:
        raise InputError("evaluate: rows of bank questions need the grader that scores them")
    own = [i for i in range(len(rows)) if i not in set(on_bank)]
    ref_rows = [rows[i] for i in own]
    human = np.array([r.score for r in rows])
    max_s = np.array([r.max_score for r in rows])
    step = scale_step(rows)
    zs = np.zeros(len(rows))
    results = {}
    if on_bank:
        items = [Item(bank.questions[rows[i].question_id], bank.rubrics.get(rows[i].question_id), rows[i].answer)
                 for i in on_bank]
        for i, r in zip(on_bank, grader.grade_many(items)):
            results[i] = r
            zs[i] = r.score / r.max_score * max_s[i]
    if ref_rows:
        if X is None:
            X = signals_for(ref_rows, embedder, progress, second if calibration.second else None)
        zs[own] = calibration.predict(X, names, empty_mask(ref_rows)) * max_s[own]
    zero = metrics(human, zs, max_s, step)
    cvm = None
    head_pred = zs
    if cv:
        if not ref_rows:
            raise InputError(f"--cv {cv}: every row is a bank question, scored as `grade` ships it; "
                             "nothing is fitted, so there is nothing to cross-validate")
        cvp = zs.copy()
        cvp[own] = cross_validate(X, ref_rows, cv, calibration, names) * max_s[own]
        cvm = metrics(human, cvp, max_s, step)
        head_pred = cvp
    head = cvm or zero
    predictions = [
        Prediction(line=r.line, question_id=r.question_id,
                   score=results[i].score if i in results else round(float(head_pred[i]), 4),
                   max_score=results[i].max_score if i in results else r.max_score,
                   human_score=r.score, human_max_score=r.max_score,
                   scored_by="bank" if i in results else "reference",
                   band=results[i].band if i in results else None)
        for i, r in enumerate(rows)
    ]
    return Evaluation(
        file=file, mode="cv" if cv else "zero-shot", n=len(rows),
        questions=len({r.question_id for r in rows}),
        pearson=head.pearson, spearman=head.spearman, qwk=head.qwk, rmse=head.rmse, mae=head.mae,
        scale_step=step, zero_shot=zero, cv=cvm, cv_folds=cv or None,
        calibration=calibration_name, model=embedder.name,
        bank_rows=len(on_bank), bank_mix=grader.mix.name if on_bank else None,
        per_question=per_question(rows, head_pred),
        seconds=round(time.perf_counter() - t0, 2),
        predictions=predictions, results=results,
    )
