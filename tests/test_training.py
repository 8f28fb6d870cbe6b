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
from grader.training import (
    META_FILE, TrainedModel, TrainSettings, agreement, pairs_from_rows, split_by_question, train,
)

NN_EXAM = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "nn-exam.jsonl"


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
    from grader.evaluate import read_graded

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
    from grader.calibration import file_sha256

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
    res, src, _ = trained
    cmd = [sys.executable, "-m", "grader.cli", "evaluate", str(src), "--limit", "45", "--cv", "2", "-f", "json"]
    plain = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    withm = subprocess.run([*cmd, "--model", str(res.out)], capture_output=True, text=True, timeout=120)
    assert plain.returncode == 0 and withm.returncode == 0, plain.stderr + withm.stderr
    a, b = json.loads(plain.stdout), json.loads(withm.stdout)
    t = b.pop("trained_model")
    a.pop("seconds"), b.pop("seconds")
    assert a == b  # the usual figures are the same with or without --model
    assert t["model"] == str(res.out) and t["trained_on"] == ["slice.jsonl"]
    for key in ("alone", "cv_with_signal"):
        assert t[key]["n"] == 45 and t[key]["pearson"] is not None
