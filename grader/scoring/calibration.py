"""A calibration: how the reference-answer signals (grader.scoring.signals) combine into a 0..1
fraction, as one of the combiner's mixes (grader.scoring.combine.CalibratedMix).

A calibration is a logistic regression on standardised signals (fractional targets: the
human score as a fraction of the question's maximum), or a ridge regression clipped to 0..1
(link "identity"), fitted by grader.accuracy.fit.  It is saved as JSON (no pickles): the
signals' names, their means and scales, the coefficients, what it was fitted on and when.

A file holds one or more fits, tried in order: the first whose signals are all known for an
answer scores it.  The shipped default (grader/data/calibration.json) has a fit that uses
`peer` (needs other answers to the same question, as in `grader evaluate`) and one without
it (one answer alone, as in `grader grade`).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field, ValidationError, model_validator

from grader.errors import InputError

FORMAT = "grader-calibration"
DEFAULT_ALPHA = 10.0
# A least-squares or likelihood fit pulls predictions towards the mean (they spread less
# than the human scores), which costs agreement once rounded to a scale (QWK).  Predictions
# are spread back around their mean, half-way to the spread of the human scores.
DEFAULT_STRETCH = 0.5



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
    embedding signals come from that model (grader.scoring.signals.ALT); its fraction is blended
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

    def explain(self, x: np.ndarray, names: list[str] | tuple[str, ...]) -> list[tuple[str, float, float]]:
        """(signal, value, coefficient x standardised value) for the first-view fit that
        scores the row x, and the second view's where it applies (its signals prefixed
        "second:" and its effects scaled by its blend weight)."""
        idx = {n: i for i, n in enumerate(names)}
        out = []
        for prefix, fits, scale in (("", self.fits, 1.0 - (self.second.weight if self.second else 0.0)),
                                    ("second:", self.second.fits if self.second else [], self.second.weight if self.second else 0.0)):
            for fit in fits:
                vals = [x[idx[f]] if f in idx else np.nan for f in fit.features]
                if not np.isfinite(vals).all():
                    continue
                z = (np.asarray(vals) - np.asarray(fit.mean)) / np.asarray(fit.scale)
                out += [(prefix + f, float(v), float(c * zi * scale))
                        for f, v, c, zi in zip(fit.features, vals, fit.coef, z)]
                break
        if out and not any(n.startswith("second:") for n, _, _ in out):
            # The second view did not apply: the first view scored alone.
            first = 1.0 - (self.second.weight if self.second else 0.0)
            out = [(n, v, e / first) for n, v, e in out] if first > 0 else out
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




# Whole-answer cosine below which a bank answer is off topic, and above which it surely is on.
ON_TOPIC = (0.35, 0.60)
