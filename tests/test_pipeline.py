"""One pipeline: `evaluate` scores bank rows exactly as `grade` ships them, and a calibrated
result explains its score with the calibration's own signals."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import ROOT, SHARED, grader_cmd

NEW_USER = SHARED / "examples" / "new-user-answers.jsonl"
CALIBRATION = ROOT / "grader" / "data" / "calibration.json"


def _human(rng: str) -> float:
    """The middle of an interviewer's range such as "8-9" or "7-9 (correct, other language)"."""
    import re

    nums = [float(x) for x in re.findall(r"\d+(?:\.\d+)?", rng)[:2]]
    return sum(nums) / len(nums)


@pytest.fixture(scope="module")
def graded_bank_file(tmp_path_factory):
    """A graded file of bank answers (no reference answers of their own): the new-user
    answers with the middle of the interviewer's range, one empty answer."""
    rows = [json.loads(line) for line in NEW_USER.read_text(encoding="utf-8").splitlines() if line.strip()][:12]
    out = [{"question_id": r["question_id"], "answer": r["answer"], "score": _human(r["interviewer"]),
            "max_score": 10} for r in rows]
    out.append({"question_id": "orm", "answer": "   ", "score": 0, "max_score": 10})
    p = tmp_path_factory.mktemp("graded") / "bank.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in out), encoding="utf-8")
    return p, out


def _grade_json(args: list[str], answer: str) -> dict:
    from grader.cli import app

    r = CliRunner().invoke(app, ["grade", *args, "--format", "json"], input=answer)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


@pytest.mark.parametrize("extra", [[], ["--calibration", str(CALIBRATION)]], ids=["default", "calibrated"])
def test_evaluate_predictions_equal_grade(graded_bank_file, tmp_path, extra):
    """Every prediction of `evaluate --predictions` is `grade --format json`'s score, to the last digit."""
    path, rows = graded_bank_file
    preds_path = tmp_path / "preds.jsonl"
    from grader.cli import app

    r = CliRunner().invoke(app, ["evaluate", str(path), "--predictions", str(preds_path), "--format", "json", *extra])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["bank_rows"] == len(rows) and summary["n"] == len(rows)
    preds = [json.loads(line) for line in preds_path.read_text(encoding="utf-8").splitlines()]
    assert [p["line"] for p in preds] == list(range(1, len(rows) + 1))
    for p, row in zip(preds, rows):
        assert p["question_id"] == row["question_id"] and p["human_score"] == row["score"]
        assert p["scored_by"] == "bank"
        got = _grade_json(["-q", row["question_id"], *extra], row["answer"])
        assert (p["score"], p["max_score"], p["band"]) == (got["score"], got["max_score"], got["band"])
    # the metrics are computed on exactly those scores
    human = np.array([p["human_score"] for p in preds])
    pred = np.array([p["score"] for p in preds])
    assert summary["zero_shot"]["mae"] == pytest.approx(np.abs(human - pred).mean(), abs=1e-4)


def test_evaluate_equals_grade_as_real_processes(graded_bank_file, tmp_path):
    """The same, with the installed console script (one row: each process loads the model)."""
    path, rows = graded_bank_file
    preds_path = tmp_path / "preds.jsonl"
    r = subprocess.run([*grader_cmd(), "evaluate", str(path), "--limit", "1", "--predictions", str(preds_path)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    pred = json.loads(preds_path.read_text(encoding="utf-8").splitlines()[0])
    g = subprocess.run([*grader_cmd(), "grade", "-q", rows[0]["question_id"], "--format", "json"],
                       input=rows[0]["answer"], capture_output=True, text=True, timeout=300)
    assert g.returncode == 0, g.stderr
    assert pred["score"] == json.loads(g.stdout)["score"]


def test_row_without_reference_of_an_unknown_question_is_refused(tmp_path):
    p = tmp_path / "g.jsonl"
    p.write_text(json.dumps({"question_id": "no-such-question", "answer": "x", "score": 1, "max_score": 2}) + "\n")
    r = subprocess.run([*grader_cmd(), "evaluate", str(p)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"{p}:1: reference_answer: needed" in r.stderr and "no-such-question" in r.stderr


def test_calibrated_result_explains_its_score(bank, grader_):
    """Under a calibration the components are the calibration's: its mix, its fraction, the
    signals it read; the fraction is the calibration's prediction from exactly those values
    (times the on-topic gate), and the score follows from it by the one policy."""
    from grader.scoring import Grader, Item
    from grader.scoring.calibration import ON_TOPIC, load_calibration
    from grader.scoring.combine import CalibratedMix, capped, misses_required, points_for
    from grader.scoring.similarity import ramp

    cal = load_calibration()
    g = Grader(grader_.embedder, CalibratedMix(cal))
    q = bank.get("put-vs-patch")
    answers = [q.model_answer, "PUT replaces the whole resource.", bank.get("docker").model_answer,
               "PATCH replaces the whole resource and PUT is a partial update."]
    for r in g.grade_many([Item(q, bank.rubrics[q.id], a) for a in answers]):
        c = r.components
        assert c.mix == "calibration"
        used = {x.signal for x in c.contributions}
        assert "keywords" not in used and "semantic" not in used  # the rubric mix's signals made nothing here
        first_view = {n for n in used if not n.startswith("second:") and n not in ("on_topic_gate", "exemplar")}
        assert first_view and first_view <= set(cal.features())
        values = {x.signal: x.value for x in c.contributions}
        names = sorted(first_view)
        X = np.array([[values[n] for n in names]])
        frac = float(cal.predict(X, names)[0]) * ramp(c.semantic_raw, *ON_TOPIC)
        # The policy's pull toward the bank's graded exemplars is shown as its own contribution.
        frac += sum(x.effect for x in c.contributions if x.signal == "exemplar")
        assert c.fraction == pytest.approx(frac, abs=2e-3)  # values are shown to 4 decimals
        expected = points_for(capped(c.fraction, misses_required(r.concepts)), r.max_score,
                              sum(m.penalty for m in r.misconceptions))
        assert r.score == pytest.approx(expected, abs=0.011)


def test_rubric_result_explains_its_score(bank, grader_):
    """The rubric mix's contributions add up to its fraction, and the policy makes the score."""
    from grader.scoring import Item
    from grader.scoring.combine import capped, misses_required, points_for

    q = bank.get("put-vs-patch")
    for a in [q.model_answer, "PUT replaces the whole resource.", "PATCH replaces the whole resource."]:
        r = grader_.grade_many([Item(q, bank.rubrics[q.id], a)])[0]
        c = r.components
        assert c.mix == "rubric" and {x.signal for x in c.contributions} <= {"keywords", "semantic", "claimed", "exemplar"}
        assert sum(x.effect for x in c.contributions) == pytest.approx(c.fraction, abs=2e-4)
        expected = points_for(capped(c.fraction, misses_required(r.concepts)), r.max_score,
                              sum(m.penalty for m in r.misconceptions))
        assert r.score == pytest.approx(expected, abs=0.011)  # the fraction is shown to 4 decimals


def test_the_same_answer_twice_is_scored_once_and_alike(bank, grader_, monkeypatch):
    """An answer repeated in one call or a later one (a copied answer, a resubmission, the next
    chunk of a batch) gets the result it gets alone, as its own object, and the scorers see it
    once; the same words under another rubric object are scored afresh."""
    from grader.scoring import Grader, Item
    from grader.scoring.rubric import RubricScorer

    fresh = Grader(grader_.embedder)
    q, other = bank.get("put-vs-patch"), bank.get("orm")
    a = "PUT replaces the whole resource; PATCH changes only the fields you send."
    items = [Item(q, bank.rubrics[q.id], a), Item(other, bank.rubrics[other.id], a), Item(q, bank.rubrics[q.id], a)]
    seen: list[int] = []
    score = RubricScorer.score
    monkeypatch.setattr(RubricScorer, "score", lambda self, answers, vectors: seen.append(len(answers))
                        or score(self, answers, vectors))
    first, to_orm, again = fresh.grade_many(items)
    assert seen == [2]
    assert again == first and again is not first and again.concepts is not first.concepts
    assert to_orm.question_id == "orm" and to_orm != first
    later = fresh.grade(q, bank.rubrics[q.id], a)
    assert seen == [2] and later == first and later is not first and later.concepts is not first.concepts
    first.concepts.clear()  # a caller changing its result changes no later one
    assert fresh.grade(q, bank.rubrics[q.id], a) == later
    edited = bank.rubrics[q.id].model_copy(update={"concepts": bank.rubrics[q.id].concepts[:1]})
    assert len(fresh.grade(q, edited, a).concepts) == 1 and seen == [2, 1]
    assert later == grader_.grade(q, bank.rubrics[q.id], a)


def test_a_grader_keeps_only_its_most_recent_results(bank, grader_, monkeypatch):
    """Kept results are bounded: beyond RECENT_RESULTS the oldest is scored again."""
    from grader.scoring import Grader, Item, pipeline
    from grader.scoring.rubric import RubricScorer

    monkeypatch.setattr(pipeline, "RECENT_RESULTS", 2)
    fresh = Grader(grader_.embedder)
    q = bank.get("docker")
    answers = ["Docker packages an app with its libraries.", "A container shares the host kernel.",
               "An image is built from a Dockerfile."]
    seen: list[list[str]] = []
    score = RubricScorer.score
    monkeypatch.setattr(RubricScorer, "score", lambda self, ps, vectors: seen.append([p.item.answer for p in ps])
                        or score(self, ps, vectors))
    for a in answers:
        fresh.grade(q, bank.rubrics[q.id], a)
    fresh.grade(q, bank.rubrics[q.id], answers[2])  # kept
    fresh.grade(q, bank.rubrics[q.id], answers[0])  # the oldest, gone
    assert seen == [[a] for a in answers] + [[answers[0]]]
