"""Fitting calibrations on human-graded answers (`grader calibrate`, cross-validation)."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from grader.accuracy.graded import empty_mask, question_weights, signals_for
from grader.graded_file import read_graded
from grader.embedding import Embedder
from grader.errors import InputError
from grader.fsutil import file_sha256
from grader.scoring.calibration import (
    DEFAULT_ALPHA, DEFAULT_STRETCH, MODEL_SIGNAL, SECOND_WEIGHT, Calibration, Fit, FittedOn, SecondView,
)
from grader.scoring.signals import ALT, DIRECTION, SIGNALS

Progress = Callable[[int, int], None]

MIN_ROWS = 10


def _signed_fit(Z: np.ndarray, t: np.ndarray, w: np.ndarray, alpha: float, link: str,
                bounds: list[tuple[float | None, float | None]]) -> tuple[np.ndarray, float]:
    """Penalised least squares (identity) or fractional logistic (logit) regression with each
    coefficient held to its sign (scipy L-BFGS-B); the intercept is free.

    Minimises sum(w * loss) + alpha / 2 * |coef|^2, as sklearn's Ridge and
    LogisticRegression(C = 1 / alpha) do.
    """
    from scipy.optimize import minimize
    from scipy.special import expit, log_expit

    def objective(params: np.ndarray) -> tuple[float, np.ndarray]:
        b, c = params[0], params[1:]
        lin = b + Z @ c
        if link == "logit":
            loss = -(w * (t * log_expit(lin) + (1 - t) * log_expit(-lin))).sum()
            g = w * (expit(lin) - t)
        else:
            r = lin - t
            loss = 0.5 * (w * r * r).sum()
            g = w * r
        value = loss + 0.5 * alpha * float(c @ c)
        grad = np.concatenate([[g.sum()], Z.T @ g + alpha * c])
        return float(value), grad

    mean_t = float(np.clip(np.average(t, weights=w), 1e-3, 1 - 1e-3))
    b0 = math.log(mean_t / (1 - mean_t)) if link == "logit" else mean_t
    x0 = np.zeros(Z.shape[1] + 1)
    x0[0] = b0
    res = minimize(objective, x0, jac=True, method="L-BFGS-B", bounds=[(None, None), *bounds],
                   options={"maxiter": 2000})
    return res.x[1:], float(res.x[0])


def fit_one(X: np.ndarray, y: np.ndarray, names: list[str] | tuple[str, ...],
            features: list[str], weight: np.ndarray | None = None,
            alpha: float = DEFAULT_ALPHA, link: str = "logit",
            stretch: float = DEFAULT_STRETCH, signed: bool = True) -> Fit:
    """A fit of y (0..1) on the named columns of X, rows with unknown values left out.

    logit: a logistic regression on fractional targets; identity: ridge regression; both
    with L2 penalty alpha on standardised signals.  `signed` holds every coefficient to the
    direction its signal means (grader.scoring.signals.DIRECTION: more overlap never lowers a
    score): collinear signals then cannot trade large opposite weights that fit one set and
    transfer badly to new questions.
    stretch: 0 keeps the fitted spread; 1 spreads predictions as widely as the targets.
    """

    if link not in ("logit", "identity"):
        raise InputError(f"calibration: unknown link {link!r} (logit or identity)")
    cols = X[:, [list(names).index(f) for f in features]]
    ok = np.isfinite(cols).all(axis=1)
    if ok.sum() < MIN_ROWS:
        raise InputError(
            f"calibration: {int(ok.sum())} answers with {', '.join(features)}; {MIN_ROWS} needed to fit"
        )
    t = np.clip(y[ok], 0.0, 1.0)
    w = np.ones(len(t)) if weight is None else np.asarray(weight, dtype=float)[ok]
    w = w * len(w) / w.sum()
    mean = np.average(cols[ok], axis=0, weights=w)
    scale = np.sqrt(np.average((cols[ok] - mean) ** 2, axis=0, weights=w))
    scale = np.where(scale > 1e-9, scale, 1.0)
    Z = (cols[ok] - mean) / scale
    bounds: list[tuple[float | None, float | None]] = []
    for f in features:
        # A trained model's score, like the rubric signals, only ever says "better".
        d = (1 if f == MODEL_SIGNAL else DIRECTION.get(f, 0)) if signed else 0
        bounds.append((0.0, None) if d > 0 else (None, 0.0) if d < 0 else (None, None))
    coef, intercept = _signed_fit(Z, t, w, alpha, link, bounds)
    fit = Fit(
        features=list(features), mean=[float(v) for v in mean],
        scale=[float(v) for v in scale], coef=[float(v) for v in coef],
        intercept=intercept, link=link, alpha=alpha,
    )
    raw = fit._raw(Z)
    center = float(np.average(raw, weights=w))
    sd_p = math.sqrt(float(np.average((raw - center) ** 2, weights=w)))
    sd_y = math.sqrt(float(np.average((t - np.average(t, weights=w)) ** 2, weights=w)))
    k = 1.0 + stretch * (sd_y / sd_p - 1.0) if sd_p > 1e-9 else 1.0
    return fit.model_copy(update={"center": center, "stretch": max(k, 1e-3)})


def fit_calibration(
    X: np.ndarray, y: np.ndarray, names: list[str] | tuple[str, ...], model: str,
    feature_sets: list[list[str]], weight: np.ndarray | None = None,
    fitted_on: list[FittedOn] | None = None, alpha: float = DEFAULT_ALPHA,
    note: str | None = None, link: str = "logit", stretch: float = DEFAULT_STRETCH,
    second_model: str | None = None, second_feature_sets: list[list[str]] | None = None,
    second_weight: float = SECOND_WEIGHT,
) -> Calibration:
    """A calibration with one fit per feature set (tried in that order when applied), and with
    `second_model` a second view fitted on `second_feature_sets` where its signals are known."""
    fits = _fits(X, y, names, feature_sets, weight, alpha, link, stretch)
    if not fits:
        raise InputError("calibration: too few answers to fit")
    second = None
    if second_model and second_feature_sets:
        alt = _fits(X, y, names, second_feature_sets, weight, alpha, link, stretch, quiet=True)
        second = SecondView(model=second_model, weight=second_weight, fits=alt) if alt else None
    return Calibration(
        model=model,
        fits=fits,
        second=second,
        stretch_setting=stretch,
        fitted_on=fitted_on or [],
        created=datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        note=note,
    )


def _fits(X, y, names, feature_sets, weight, alpha, link, stretch, quiet: bool = False) -> list[Fit]:
    fits = []
    for i, fs in enumerate(feature_sets):
        try:
            fits.append(fit_one(X, y, names, fs, weight, alpha, link, stretch))
        except InputError:
            # A set of signals nobody has (no question with enough answers for `peer`) is
            # left out as long as a later one can be fitted.
            if i == len(feature_sets) - 1 and not fits and not quiet:
                raise
    return fits


_BASE = ["cos", "align", "align_p", "cos_noq", "overlap", "overlap_p", "concepts", "cos_q",
         "len_ratio"]
DEFAULT_FEATURE_SETS: list[list[str]] = [
    [f for f in _BASE if f != "align"] + ["peer", "peer_words", "overlap_z", "align_z", "cos_noq_z",
                                          "concepts_z", "len_ratio_z", "peer_z", "peer_words_z"],
    _BASE,
]
SECOND_FEATURE_SETS: list[list[str]] = [[ALT.get(f, f) for f in fs] + ["alt_terms"] for fs in DEFAULT_FEATURE_SETS]


# --------------------------------------------------------------------------- calibrating graded files


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
