"""Learning from graded answers (--graded), the k-per-question protocol, and answer groups."""

import json
import subprocess

import numpy as np
import pytest

from conftest import DATA, ROOT, grader_cmd
from grader.scoring.graded import GradedSet, fit_blend, predict

SMALL = DATA / "graded-small.jsonl"
POINTS = {"strong": 9, "paraphrase": 8, "partial": 5, "wrong": 1, "swapped": 2, "hedged": 3}
QUESTIONS = ["database-indexes", "docker", "cache-invalidation", "connection-pooling"]


def run(*args, **kw):
    return subprocess.run([*grader_cmd(), *map(str, args)], capture_output=True, text=True, cwd=ROOT,
                          timeout=600, **kw)


@pytest.fixture(scope="module")
def graded_file(tmp_path_factory):
    """Bank answers of the held-out set with an interviewer's grades by kind."""
    rows = []
    for q in QUESTIONS:
        for line in (DATA / "heldout" / f"{q}.jsonl").read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            rows.append({"question_id": q, "answer": r["answer"], "score": POINTS[r["kind"]], "max_score": 10})
    p = tmp_path_factory.mktemp("graded") / "graded.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return p, rows


# ----------------------------------------------------------------------------- the blend


def _set(rng, n, shift, dim=8):
    v = rng.standard_normal((n, dim))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    z = rng.uniform(0.2, 0.7, n)
    return GradedSet(vectors=v, grades=np.clip(z + shift, 0, 1), zero_shot=z)


def test_graders_harsher_than_zero_shot_pull_scores_down_and_none_leave_them():
    rng = np.random.default_rng(0)
    sets = {f"q{i}": _set(rng, 10, -0.2) for i in range(6)}
    blend = fit_blend(sets)
    assert blend.fitted_on == 60 and blend.offset > 0.5
    z = np.array([0.5, 0.6])
    v = sets["q0"].vectors[:2]
    learned, near = predict(blend, z, v, sets["q0"])
    assert (learned < z - 0.1).all() and near[0].nearest == 0 and near[0].similarity == pytest.approx(1.0)
    same, none = predict(blend, z, v, None)
    assert np.array_equal(same, z) and none == [None, None]
    assert fit_blend(sets) == blend  # deterministic


def test_few_graded_answers_fall_back_to_the_prior_and_move_little():
    rng = np.random.default_rng(1)
    one = {"q": _set(rng, 1, -0.4)}
    blend = fit_blend(one)
    assert blend.fitted_on == 0  # the prior: too few to fit
    z = np.array([0.6])
    few = predict(blend, z, one["q"].vectors, one["q"])[0]
    many_set = {"q": _set(np.random.default_rng(1), 30, -0.4)}
    many = predict(fit_blend(many_set), z, many_set["q"].vectors[:1], many_set["q"])[0]
    assert z[0] - few[0] < z[0] - many[0]  # one graded answer moves a score less than thirty


def test_no_coefficient_is_fitted_below_zero():
    """Graded answers whose neighbours mislead (alike answers graded oppositely): an
    unconstrained fit would weigh the neighbours negatively; the blend drops them instead."""
    rng = np.random.default_rng(3)
    sets = {}
    for i in range(8):
        v = np.repeat(np.eye(5), 2, axis=0)  # pairs of identical answers
        z = np.full(10, 0.5)
        grades = np.tile([0.9, 0.1], 5) + rng.normal(0, 0.02, 10)
        sets[f"q{i}"] = GradedSet(vectors=v, grades=np.clip(grades, 0, 1), zero_shot=z)
    from grader.scoring.graded import loo_features

    X = np.vstack([loo_features(g) for g in sets.values()])
    y = np.concatenate([g.grades - g.zero_shot for g in sets.values()])
    free = np.linalg.lstsq(X, y, rcond=None)[0]
    assert free[1] < 0  # the twin's grade predicts the opposite grade
    blend = fit_blend(sets)
    assert min(blend.offset, blend.neighbours, blend.residuals) >= 0 and blend.neighbours == 0


def test_a_sharper_temperature_weighs_the_nearest_graded_answer_more():
    from grader.scoring.graded import SECOND_VIEW_TEMPERATURE, TEMPERATURE, vote

    sims, grades = np.array([0.90, 0.88, 0.70]), np.array([1.0, 0.0, 0.0])
    wide, sharp = vote(sims, grades, TEMPERATURE).vote, vote(sims, grades, SECOND_VIEW_TEMPERATURE).vote
    assert 0.5 < wide < sharp < 1.0
    g = GradedSet(vectors=np.eye(3), grades=grades, zero_shot=np.zeros(3), temperature=SECOND_VIEW_TEMPERATURE)
    assert g.without(2).temperature == SECOND_VIEW_TEMPERATURE  # leave-one-out keeps the view


def test_neighbours_are_found_in_the_view_the_score_was_computed_in(graded_file, settings):
    """With a calibration's second view, the graded answers are compared by the second model's
    vectors (already embedded for the score); without one, by the first model's."""
    from grader.embedding import make_embedder, make_second_embedder
    from grader.bank import load_bank
    from grader.scoring import Grader, Item
    from grader.scoring.calibration import load_calibration
    from grader.scoring.combine import CalibratedMix
    from grader.scoring.graded import SECOND_VIEW_TEMPERATURE, TEMPERATURE
    from grader.scoring.signals import second_view_vectors

    _, rows = graded_file
    rows = [r for r in rows if r["question_id"] == "docker"]
    bank = load_bank(settings.questions, settings.rubrics_dir)
    items = [Item(bank.questions["docker"], bank.rubrics.get("docker"), r["answer"]) for r in rows]
    scores, maxes = [r["score"] for r in rows], [r["max_score"] for r in rows]
    emb, e5 = make_embedder(settings), make_second_embedder(settings)
    first = Grader(emb).learning_from(items, scores, maxes).learned.sets["docker"]
    assert first.temperature == TEMPERATURE
    assert np.allclose(first.vectors, np.stack(Grader(emb).answer_vectors([r["answer"] for r in rows])), atol=1e-6)
    calibrated = Grader(emb, CalibratedMix(load_calibration(None)), second=e5).learning_from(items, scores, maxes)
    second = calibrated.learned.sets["docker"]
    assert second.temperature == SECOND_VIEW_TEMPERATURE
    assert np.allclose(second.vectors, np.stack(second_view_vectors(e5, [r["answer"] for r in rows])), atol=1e-6)
    assert not np.allclose(second.vectors, first.vectors, atol=1e-2)
    # A graded answer scored again finds itself, in the same view.
    again = calibrated.grade(bank.questions["docker"], bank.rubrics.get("docker"), rows[0]["answer"])
    assert again.nearest_graded.similarity == pytest.approx(1.0, abs=1e-3)


# ----------------------------------------------------------------------------- grade / batch


def test_grade_learns_from_graded_answers_and_says_so(graded_file):
    path, rows = graded_file
    # A right answer in plain words, which zero-shot scores far under its grade.
    plain_words = next(r["answer"] for r in rows if r["question_id"] == "database-indexes" and r["score"] == 8)
    plain = run("grade", "-q", "database-indexes", "-a", plain_words, "-f", "json")
    learned = run("grade", "-q", "database-indexes", "-a", plain_words, "-f", "json", "--graded", path)
    again = run("grade", "-q", "database-indexes", "-a", plain_words, "-f", "json", "--graded", path)
    assert plain.returncode == learned.returncode == 0, learned.stderr
    a, b = json.loads(plain.stdout), json.loads(learned.stdout)
    assert a["learned_from"] is None and b["learned_from"].startswith(f"{len(rows)} graded answers sha256:")
    near = b["nearest_graded"]
    assert near["source"] == "graded" and near["answer"] == plain_words and near["score"] == 8
    assert a["score"] < 7 and b["score"] > a["score"]  # its twin was graded 8/10
    assert any(c["signal"] == "graded" for c in b["components"]["contributions"])
    assert learned.stdout == again.stdout  # same graded file, same bytes
    # A question without graded answers is scored as without the file.
    other = run("grade", "-q", "rest-principles", "-a", "REST uses resources and HTTP verbs.", "-f", "json",
                "--graded", path)
    zero = run("grade", "-q", "rest-principles", "-a", "REST uses resources and HTTP verbs.", "-f", "json")
    assert json.loads(other.stdout)["score"] == json.loads(zero.stdout)["score"]


def test_batch_learns_and_refuses_to_resume_with_other_graded_answers(graded_file, tmp_path):
    path, rows = graded_file
    answers = tmp_path / "a.csv"
    answers.write_text("candidate,question_id,answer\n" + "".join(
        f"c{i},{r['question_id']},\"{r['answer'].replace(chr(34), chr(39))}\"\n" for i, r in enumerate(rows[::4])),
        encoding="utf-8")
    res = tmp_path / "r.jsonl"
    report = tmp_path / "report.jsonl"
    r = run("batch", answers, "--results", res, "--graded", path, "--quiet", "--out", report)
    assert r.returncode == 0, r.stderr
    recs = [json.loads(x) for x in res.read_text().splitlines()]
    assert all(x["learned_from"].startswith(f"{len(rows)} graded") for x in recs)
    assert all(x["nearest_graded"]["source"] == "graded" for x in recs)
    # The report's records of questions a candidate skipped say the same.
    reported = [json.loads(x) for x in report.read_text().splitlines()]
    assert any(x["band"] == "no answer" for x in reported)
    assert {x["learned_from"] for x in reported} == {recs[0]["learned_from"]}
    other = tmp_path / "other.jsonl"
    other.write_text("".join(json.dumps(x) + "\n" for x in rows[:-3]), encoding="utf-8")
    r = run("batch", answers, "--results", res, "--graded", other, "--resume", "--quiet")
    assert r.returncode == 2 and "learned_from" in r.stderr and "--force" in r.stderr


@pytest.mark.parametrize("row, field", [
    ({"question_id": "docker", "answer": "x", "max_score": 10}, "score"),
    ({"question_id": "docker", "answer": "x", "score": 11, "max_score": 10}, "score"),
    ({"question_id": "no-such-question", "answer": "x", "score": 1, "max_score": 10}, "reference_answer"),
])
def test_a_bad_graded_row_is_one_line_naming_file_line_and_field(tmp_path, row, field):
    p = tmp_path / "g.jsonl"
    p.write_text(json.dumps({"question_id": "docker", "answer": "fine", "score": 5, "max_score": 10}) + "\n"
                 + json.dumps(row) + "\n", encoding="utf-8")
    r = run("grade", "-q", "docker", "-a", "Containers.", "--graded", p)
    assert r.returncode == 2 and f"{p}:2: {field}" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


# ----------------------------------------------------------------------------- evaluate


def test_k_per_question_reports_the_usual_metrics_and_k0_is_zero_shot():
    zero = run("evaluate", SMALL, "--graded-per-question", 0, "--repeats", 2, "-f", "json")
    three = run("evaluate", SMALL, "--graded-per-question", 3, "--repeats", 2, "-f", "json")
    assert zero.returncode == three.returncode == 0, three.stderr
    z, t = json.loads(zero.stdout), json.loads(three.stdout)
    for key in ("pearson", "qwk", "rmse", "n"):
        assert key in z and key in t
    plain = json.loads(run("evaluate", SMALL, "-f", "json").stdout)
    assert z["n"] == plain["n"] and z["pearson"] == pytest.approx(plain["pearson"], abs=1e-4)
    assert t["n"] < z["n"] and t["pool"] == 18 and t["k"] == 3 and t["blend"]["fitted_on"] > 0


def test_pool_protocol_drops_answers_also_scored_and_matches_grade(graded_file, tmp_path):
    path, rows = graded_file
    test = tmp_path / "test.jsonl"
    scored = [r for r in rows if r["question_id"] == "docker"][:3]
    test.write_text("".join(json.dumps(r) + "\n" for r in scored), encoding="utf-8")
    r = run("evaluate", test, "--graded", path, "-f", "json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["dropped"] == 3 and out["pool"] == len(rows) - 3 and f"3 graded answer(s) dropped" in r.stderr
    # Scored as `grade --graded` scores it, learning from the same pool.
    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(json.dumps(x) + "\n" for x in rows if x not in scored), encoding="utf-8")
    for x, learned in zip(scored, out["scores"]):
        g = json.loads(run("grade", "-q", "docker", "-a", x["answer"], "-f", "json", "--graded", pool).stdout)
        assert g["learned_from"].startswith(f"{len(rows) - 3} graded")
        assert g["score"] == pytest.approx(learned, abs=0.006)


def test_graded_options_refuse_what_they_cannot_measure():
    r = run("evaluate", SMALL, "--graded-per-question", 3, "--cv", 2)
    assert r.returncode == 2 and "--cv" in r.stderr


# ----------------------------------------------------------------------------- groups


def test_groups_put_alike_answers_together_and_suggest_what_to_grade(tmp_path, graded_file):
    path, rows = graded_file
    same = "An index is a B-tree kept sorted on a column, so a lookup is O(log n) instead of a full scan."
    answers = tmp_path / "a.csv"
    lines = ["candidate,question_id,answer"]
    for i in range(4):
        lines.append(f"twin{i},database-indexes,\"{same}\"")
    lines.append("odd,database-indexes,\"Docker containers share the host kernel.\"")
    lines.append("blank,database-indexes,\"\"")
    answers.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "g.jsonl"
    r = run("groups", answers, "--out", out, "-f", "json")
    assert r.returncode == 0, r.stderr
    groups = [json.loads(x) for x in out.read_text().splitlines()]
    assert sum(g["size"] for g in groups) == 6
    first = groups[0]
    assert first["size"] == 4 and first["suggest"] == 1 and {m["candidate"] for m in first["members"]} == {
        f"twin{i}" for i in range(4)}
    assert any(g["mean_score"] is None and g["suggest"] == 0 for g in groups)  # the empty answer
    assert json.loads(r.stdout)["groups"] == groups
    # Graded already: a group whose answer was graded is covered, not suggested.
    graded = tmp_path / "graded.jsonl"
    graded.write_text(json.dumps({"question_id": "database-indexes", "answer": same, "score": 8, "max_score": 10})
                      + "\n", encoding="utf-8")
    r = run("groups", answers, "-f", "json", "--graded", graded)
    twin = next(g for g in json.loads(r.stdout)["groups"] if g["size"] == 4)
    assert twin["suggest"] == 0 and twin["covered"] == pytest.approx(1.0) and "covered" in twin["why"]


def test_the_groups_table_reads_in_an_80_column_terminal(tmp_path):
    """The representative answer wraps in a wide cell of its own, not a word per line."""
    import os

    answer = "An index keeps a sorted copy of a column so the database finds rows without reading the whole table."
    answers = tmp_path / "a.csv"
    answers.write_text(f'candidate,question_id,answer\nana,database-indexes,"{answer}"\n', encoding="utf-8")
    r = run("groups", answers, env=dict(os.environ, COLUMNS="80"))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines and max(len(x) for x in lines) <= 80
    assert any("database-indexes · group 1: ana: An index keeps a" in x for x in lines), r.stdout
    assert any("an answer unlike the others" in x for x in lines), r.stdout
