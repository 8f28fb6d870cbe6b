"""Agreement with human graders: read a graded file, grade each answer against its own
reference answer, and compare.

Metrics are on the file's own score scale (points, not fractions):

- pearson, spearman: scipy.stats over all answers pooled, on score / max_score (a file
  that mixes maxima would otherwise earn correlation from the maxima alone; with one
  maximum per file it is the same as on points).
- qwk: sklearn's cohen_kappa_score(weights="quadratic") on the file's scale: whole points
  when every human score and maximum is a whole number, else half points.  Predictions
  (fraction x max_score) and human scores are both rounded to the nearest step (halves
  round up) and clipped to 0..max_score before the kappa; nothing else is rounded.
- rmse, mae: sklearn, in points.

Zero-shot: the calibration given (or the shipped default) applied as it is.  Cross-validated
(`cv`): K folds grouped by question (sklearn GroupKFold), so the calibration that scores an
answer was fitted on other questions of the file only, never on its own question.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from grader.calibration import Calibration, fit_calibration
from grader.embedding import Embedder
from grader.errors import InputError
from grader.features import SIGNALS, Pair, compute_signals

Progress = Callable[[int, int], None]


class GradedRow(BaseModel):
    """One human-graded answer (shared/datasets/README.md); other fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    question_id: str = Field(min_length=1)
    question: str
    reference_answer: str = Field(min_length=1)
    answer: str
    score: float = Field(ge=0)
    max_score: float = Field(gt=0)
    line: int = Field(default=0, exclude=True)

    @model_validator(mode="after")
    def _score_in_range(self) -> "GradedRow":
        if self.score > self.max_score + 1e-9:
            raise ValueError(f"score: {self.score:g} is above max_score {self.max_score:g}")
        return self


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
    per_question: list[QuestionMetrics]
    seconds: float


# --------------------------------------------------------------------------- reading


def _field_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(x) for x in err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    return f"{loc}: {msg}" if loc else msg


def read_graded(path: Path, limit: int | None = None) -> list[GradedRow]:
    """Rows of a graded JSONL file; a bad row raises InputError with file:line: field."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    rows: list[GradedRow] = []
    for lineno, raw in enumerate(data.splitlines(), start=1):
        try:
            line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}:{lineno}: not UTF-8 text (byte {exc.start})") from None
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{lineno}: invalid JSON ({exc.msg}, column {exc.colno})") from None
        if not isinstance(obj, dict):
            raise InputError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
        if isinstance(obj.get("question_id"), int):
            obj["question_id"] = str(obj["question_id"])
        try:
            rows.append(GradedRow.model_validate({**obj, "line": lineno}))
        except ValidationError as exc:
            raise InputError(f"{path}:{lineno}: {_field_error(exc)}") from None
        if limit is not None and len(rows) >= limit:
            break
    if not rows:
        raise InputError(f"{path}: no graded answers in the file")
    return rows


# --------------------------------------------------------------------------- metrics


def scale_step(rows: Sequence[GradedRow]) -> float:
    """1 when every score and maximum is a whole number, else 0.5."""
    whole = all(float(r.score).is_integer() and float(r.max_score).is_integer() for r in rows)
    return 1.0 if whole else 0.5


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


# --------------------------------------------------------------------------- grading


def signals_for(rows: Sequence[GradedRow], embedder: Embedder, progress: Progress | None = None,
                second: Embedder | None = None) -> np.ndarray:
    """The signal matrix (columns grader.features.SIGNALS) of every row; the alt_ columns
    from `second`, NaN without it."""
    pairs = [Pair(r.question, r.reference_answer, r.answer) for r in rows]
    return compute_signals(pairs, embedder, progress=progress, groups=[r.question_id for r in rows],
                           second=second)


def empty_mask(rows: Sequence[GradedRow]) -> np.ndarray:
    return np.array([not r.answer.strip() for r in rows])


def question_weights(groups: Sequence[str]) -> np.ndarray:
    """Sample weights giving every question the same total weight (mean weight 1), so that
    a question with many answers does not dominate a fit."""
    _, inv, counts = np.unique(np.asarray(groups), return_inverse=True, return_counts=True)
    w = 1.0 / counts[inv]
    return w * len(w) / w.sum()


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
) -> Evaluation:
    """Zero-shot agreement, and with `cv` the K-fold figure grouped by question; `X` (columns
    `names`) when the signals are already computed, e.g. with a trained model's score;
    `second` the second embedding model, for a calibration with a second view."""
    t0 = time.perf_counter()
    if X is None:
        X = signals_for(rows, embedder, progress, second if calibration.second else None)
    human = np.array([r.score for r in rows])
    max_s = np.array([r.max_score for r in rows])
    step = scale_step(rows)
    zs = calibration.predict(X, names, empty_mask(rows)) * max_s
    zero = metrics(human, zs, max_s, step)
    cvm = None
    head_pred = zs
    if cv:
        cvp = cross_validate(X, rows, cv, calibration, names) * max_s
        cvm = metrics(human, cvp, max_s, step)
        head_pred = cvp
    head = cvm or zero
    return Evaluation(
        file=file, mode="cv" if cv else "zero-shot", n=len(rows),
        questions=len({r.question_id for r in rows}),
        pearson=head.pearson, spearman=head.spearman, qwk=head.qwk, rmse=head.rmse, mae=head.mae,
        scale_step=step, zero_shot=zero, cv=cvm, cv_folds=cv or None,
        calibration=calibration_name, model=embedder.name,
        per_question=per_question(rows, head_pred),
        seconds=round(time.perf_counter() - t0, 2),
    )


# --------------------------------------------------------------------------- calibrating


def calibrate_files(
    paths: Sequence[Path],
    embedder: Embedder,
    *,
    limit: int | None = None,
    feature_sets: list[list[str]] | None = None,
    progress: Progress | None = None,
    note: str | None = None,
    scorer=None,
    second: Embedder | None = None,
) -> Calibration:
    """A calibration fitted on one or more graded files pooled, each file weighing the same
    in total (so a large file does not dominate) and within a file each question the same,
    empty answers left out.  With `scorer` (a trained model), its score is one more signal;
    with `second` (another embedding model), the calibration has a second view."""
    from grader.calibration import FittedOn, file_sha256

    if not paths:
        raise InputError("calibrate: give at least one graded file")
    parts = []
    for path in paths:
        rows = read_graded(path, limit)
        parts.append((rows, FittedOn(
            file=Path(path).name, sha256=file_sha256(Path(path)), rows=len(rows),
            questions=len({r.question_id for r in rows}), weight=round(1.0 / len(paths), 4),
        )))
    return calibrate_rows(parts, embedder, feature_sets=feature_sets, progress=progress, note=note,
                          scorer=scorer, second=second)


def calibrate_rows(parts, embedder: Embedder, *, feature_sets: list[list[str]] | None = None,
                   progress: Progress | None = None, note: str | None = None, scorer=None,
                   second: Embedder | None = None) -> Calibration:
    """`calibrate_files` on rows already read: `parts` are (rows, FittedOn) pairs."""
    from grader.calibration import DEFAULT_FEATURE_SETS, MODEL_SIGNAL, SECOND_FEATURE_SETS

    names = list(SIGNALS)
    feature_sets = feature_sets or DEFAULT_FEATURE_SETS
    second_sets = SECOND_FEATURE_SETS if second is not None else None
    if scorer is not None:
        names.append(MODEL_SIGNAL)
        feature_sets = [[*fs, MODEL_SIGNAL] for fs in feature_sets]
        second_sets = second_sets and [[*fs, MODEL_SIGNAL] for fs in second_sets]
    Xs, ys, ws = [], [], []
    for rows, _ in parts:
        X = signals_for(rows, embedder, progress, second)
        if scorer is not None:
            got = scorer.score([r.reference_answer for r in rows], [r.answer for r in rows])
            X = np.hstack([X, np.round(np.asarray(got, dtype=float), 4)[:, None]])
        keep = ~empty_mask(rows)
        Xs.append(X[keep])
        ys.append(np.array([r.score / r.max_score for r in rows])[keep])
        qw = question_weights([r.question_id for r, k in zip(rows, keep) if k])
        ws.append(qw / max(1e-12, qw.sum()))
    X, y, w = np.vstack(Xs), np.concatenate(ys), np.concatenate(ws)
    w = w * len(w) / w.sum()
    cal = fit_calibration(
        X, y, names, embedder.name, feature_sets, weight=w,
        fitted_on=[info for _, info in parts], note=note,
        second_model=second.name if second is not None else None, second_feature_sets=second_sets,
    )
    if scorer is not None:
        cal.trained_model = scorer.name
    return cal


def fit_on_sets(parts, template: Calibration):
    """A calibration of the template's kind fitted on several graded sets pooled, each set and
    each question weighing the same; `parts` are (rows, signal matrix) pairs (leave-one-set-out
    figures)."""
    from grader.calibration import fit_calibration
    from grader.features import SIGNALS

    Xs, ys, ws = [], [], []
    for rows, X in parts:
        keep = ~empty_mask(rows)
        Xs.append(X[keep])
        ys.append(np.array([r.score / r.max_score for r in rows])[keep])
        qw = question_weights([r.question_id for r, k in zip(rows, keep) if k])
        ws.append(qw / qw.sum())
    w = np.concatenate(ws)
    return fit_calibration(np.vstack(Xs), np.concatenate(ys), SIGNALS, template.model,
                           weight=w * len(w) / w.sum(), **template.refit_settings())
