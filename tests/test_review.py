"""grader review without a browser: loading a run, the queue, the decision store (append-only,
conflicts, a SIGKILL mid-burst), the final-score merge, both exports and `grader batch --resume`
showing a reviewer's score.  One real `grader batch` on the bundled example (plus hostile rows)
per module; the helpers here are shared by the app and browser tests."""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, grader_cmd
from hostile.corpus import NAMES

# Candidates' texts that would run as markup or code if anything were not escaped.
HOSTILE_ANSWERS = [
    '<script>window.__pwned=1</script>Docker runs containers from images.',
    '"><img src=x onerror="window.__pwned=1">PUT replaces, PATCH modifies.',
    "{{ 7*7 }} {% raw %} ${7*7} Indexes speed up reads with a B-tree.",
    "javascript:window.__pwned=1 '; DROP TABLE decisions; --",
    "\u202eRTL override \u200b zero width </textarea></blockquote><b>bold?</b>",
]
HOSTILE_QIDS = ["docker", "put-vs-patch", "database-indexes", "docker", "n-plus-one"]


def run_cli(*args, timeout=600, **kw):
    return subprocess.run(grader_cmd() + [str(a) for a in args], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout, **kw)


def make_run(d: Path) -> Path:
    """A real batch over the bundled example plus hostile candidates; returns the results file."""
    with open(ROOT / "examples" / "candidates.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    names = [n for n in NAMES if n] + ["<script>window.__pwned=1</script>"]
    for k, (ans, qid) in enumerate(zip(HOSTILE_ANSWERS, HOSTILE_QIDS)):
        row = dict(zip(header, ["", "", ""]))
        row.update(candidate=names[k % len(names)], question_id=qid, answer=ans)
        body.append([row[h] for h in header])
    inp = d / "answers.csv"
    with open(inp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(body)
    r = run_cli("batch", inp, "--out", d / "report.html", "--quiet")
    assert r.returncode == 0, r.stderr
    return d / "report.results.jsonl"


def shared_run(tmp_path_factory, name: str) -> Path:
    """A copy, in a folder of the module's own, of one batch run made once per test session (the
    workers of pytest-xdist share it: grading it costs a model load and 50 answers embedded)."""
    import fcntl

    worker = os.environ.get("PYTEST_XDIST_WORKER")
    base = tmp_path_factory.getbasetemp().parent if worker else tmp_path_factory.getbasetemp()
    shared = base / "review-run"
    with open(base / "review-run.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (shared / "report.results.jsonl").exists():
            shared.mkdir(exist_ok=True)
            make_run(shared)
    d = tmp_path_factory.mktemp(name)
    for f in ("answers.csv", "report.results.jsonl"):
        (d / f).write_bytes((shared / f).read_bytes())
    return d / "report.results.jsonl"


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return shared_run(tmp_path_factory, "review")


def fresh_copy(results: Path, d: Path) -> Path:
    """The run's results in a folder of its own (no decisions yet)."""
    d.mkdir(parents=True, exist_ok=True)
    out = d / results.name
    out.write_bytes(results.read_bytes())
    return out


# ----------------------------------------------------------------------------- the run


def test_load_run_from_file_or_folder(results):
    from grader.review.run import load_run

    run = load_run(results.parent)
    assert run.results_path == results
    assert len(run.records) == len(results.read_text("utf-8").splitlines())
    assert "Felix Moreau" in run.candidates and "flask-django-fastapi" in run.questions


def test_bad_results_are_one_line_errors(tmp_path, results):
    from grader.errors import InputError
    from grader.review.run import load_run

    lines = results.read_text("utf-8").splitlines(keepends=True)
    bad = tmp_path / "bad.results.jsonl"
    bad.write_text(lines[0] + '{"candidate": "x"}\n', "utf-8")
    with pytest.raises(InputError, match=r"bad\.results\.jsonl:2: "):
        load_run(bad)
    bad.write_text(lines[0] + "not json\n", "utf-8")
    with pytest.raises(InputError, match=r":2: not a grader results record"):
        load_run(bad)
    torn = tmp_path / "torn.results.jsonl"
    torn.write_text(lines[0] + lines[1][:40], "utf-8")  # a batch killed mid-write
    assert len(load_run(torn).records) == 1
    (tmp_path / "two").mkdir()
    for n in ("a", "b"):
        (tmp_path / "two" / f"{n}.results.jsonl").write_text(lines[0], "utf-8")
    with pytest.raises(InputError, match="several results files"):
        load_run(tmp_path / "two")
    r = run_cli("review", tmp_path / "nothing-here.jsonl")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "file not found" in r.stderr


def test_queue_catches_short_answers_with_high_scores(results):
    """The example's one-line answers that score high (over 8/10) carry no flag; they are queued."""
    from grader.review.queue import HIGH, all_reasons, review_queue
    from grader.review.run import load_run

    run = load_run(results)
    i = run.index("Felix Moreau", "flask-django-fastapi")
    r = run.records[i]
    assert r.score / r.max_score >= max(HIGH, 0.8) and len(r.answer.split()) < 20
    assert not [f for f in r.flags if f != "missing required concept"]
    reasons = all_reasons(run.records, 60.0)
    assert any(x.kind == "short" for x in reasons[i])
    queue = review_queue(reasons, reviewed=set())
    order = [q.index for q in queue]
    assert i in order
    clean = run.index("Ada Park", "rest-principles")
    assert clean not in order  # a long, complete answer: nothing to look at
    # An injection attempt comes first; the short high score before answers with one weak reason.
    assert "possible prompt injection" in run.records[order[0]].flags
    boundary_only = [q.index for q in queue if {x.kind for x in q.reasons} == {"boundary"}]
    assert all(order.index(i) < order.index(k) for k in boundary_only)
    assert review_queue(reasons, reviewed={i}) and i not in [q.index for q in review_queue(reasons, reviewed={i})]


# ----------------------------------------------------------------------------- the store


def test_store_is_wal_append_only_and_shows_conflicts(tmp_path):
    from grader.batch.decisions import DecisionStore, NewDecision

    path = tmp_path / "r.results.jsonl.review.sqlite"
    alice, bob = DecisionStore(path), DecisionStore(path)  # two reviewers' servers on one run
    assert alice._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    a = alice.record([NewDecision(kind="score", candidate="Ann", question_id="docker", old_score=9, new_score=6,
                                  note="too generous", seen=0)], "alice")[0]
    assert a.conflict_with is None
    # Bob had loaded the page before Alice decided: his decision is kept, and marked.
    b = bob.record([NewDecision(kind="score", candidate="Ann", question_id="docker", old_score=9, new_score=7,
                                seen=0)], "bob")[0]
    assert b.conflict_with == a.id and b.id > a.id
    alice.refresh()
    assert alice.latest[("Ann", "docker")].id == b.id
    assert [d.reviewer for d in alice.history[("Ann", "docker")]] == ["alice", "bob"]
    # Having seen Bob's, Alice's next decision is no conflict.
    c = alice.record([NewDecision(kind="accept", candidate="Ann", question_id="docker", new_score=7, seen=b.id)], "alice")[0]
    assert c.conflict_with is None
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        alice._db.execute("UPDATE decisions SET new_score = 10")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        alice._db.execute("DELETE FROM decisions")
    hr = alice.human_review()
    assert hr.grades["Ann\x1fdocker"].score == 7 and hr.grades["Ann\x1fdocker"].reviewer == "alice"
    alice.close(), bob.close()


BURST = """
import sys
from grader.batch.decisions import DecisionStore, NewDecision
s = DecisionStore(sys.argv[1])
print("ready", flush=True)
k = 0
while True:
    k += 1
    s.record([NewDecision(kind="group", candidate=f"c{k}-{j}", question_id="docker", old_score=1, new_score=k % 10,
                          note="x" * 500) for j in range(20)], "burst")
"""


def test_sigkill_during_a_burst_leaves_the_database_consistent(tmp_path):
    from grader.batch.decisions import DecisionStore, NewDecision

    path = tmp_path / "r.results.jsonl.review.sqlite"
    p = subprocess.Popen([sys.executable, "-c", BURST, str(path)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert p.stdout.readline().strip() == "ready"
    time.sleep(1.0)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    n, groups = db.execute("SELECT count(*), count(DISTINCT at) FROM decisions").fetchone()
    assert n > 0 and n % 20 == 0  # whole transactions only: each burst wrote 20 at once
    assert db.execute("SELECT count(*) FROM decisions WHERE note != ? OR new_score IS NULL", ("x" * 500,)).fetchone()[0] == 0
    db.close()
    s = DecisionStore(path)
    s.record([NewDecision(kind="score", candidate="after", question_id="docker", new_score=1)], "me")
    assert len(s.history) == n + 1
    s.close()


# ----------------------------------------------------------------------------- merge and exports


def test_state_decisions_ranking_and_exports(results, tmp_path, bank):
    from grader.graded_file import read_graded
    from grader.review.export import graded_jsonl, graded_rows, report_html
    from grader.review.run import load_run
    from grader.review.state import RankingQuery, ReviewState, filter_ranking
    from grader.batch.decisions import DecisionStore, store_path

    res = fresh_copy(results, tmp_path / "run")
    run = load_run(res)
    state = ReviewState(run, DecisionStore(store_path(res)), reviewer="alice")
    before = {r.candidate: r for r in state.ranking()}
    i = run.index("Felix Moreau", "flask-django-fastapi")
    d = state.decide(i, "score", 3, note="one line: <b>not</b> 9.4", seen=0)
    assert d.old_score == run.records[i].score and d.new_score == 3
    with pytest.raises(Exception, match="score: give a score from 0 to 10"):
        state.decide(i, "score", 11)
    assert state.final(i) == 3 and state.progress().text == f"1 of {len(run.records)} answers reviewed"
    after = {r.candidate: r for r in state.ranking()}
    assert after["Felix Moreau"].total == round(before["Felix Moreau"].total - run.records[i].score + 3, 2)
    assert after["Felix Moreau"].reviewed == 1
    # A group: every member gets the score, one decision each.
    qid = "docker"
    members = [(k, 0) for k in run.of_question(qid)[:3]]
    ds = state.grade_group(members, 5, note="group")
    assert len(ds) == 3 and all(state.final(k) == 5 for k, _ in members)
    state.set_verdict(run.candidates.index("Ada Park"), "advance")
    rows = filter_ranking(state.ranking(), RankingQuery(verdict="advance"))
    assert [r.candidate for r in rows] == ["Ada Park"]
    assert [r.candidate for r in filter_ranking(state.ranking(), RankingQuery(q="felix"))] == ["Felix Moreau"]
    fails = filter_ranking(state.ranking(), RankingQuery(result="fail", sort="percent"))
    assert fails and all(not r.passed for r in fails)
    assert [r.percent for r in fails] == sorted(r.percent for r in fails)
    # The graded file reads back through the reader --graded uses.
    human = state.human_review()
    out = tmp_path / "graded.jsonl"
    out.write_text(graded_jsonl(graded_rows(run, human, set(bank.questions))), "utf-8")
    back = read_graded(out, bank=bank)
    got = {(g.question_id, g.answer): g.score for g in back}
    assert got[("flask-django-fastapi", run.records[i].answer)] == 3
    assert len(back) == 4 and all(g.from_bank for g in back)
    html = report_html(run, human)
    assert "✎ 3/10" in html and "human score by alice (grader: " in html
    assert "one line: &lt;b&gt;not&lt;/b&gt; 9.4" in html and "<b>not</b>" not in html
    assert "<script>window.__pwned" not in html
    state.store.close()


def test_batch_resume_and_cli_exports_show_the_human_score(results, tmp_path, bank):
    from grader.graded_file import read_graded
    from grader.review.run import load_run
    from grader.batch.decisions import DecisionStore, NewDecision, store_path

    d = tmp_path / "run"
    res = fresh_copy(results, d)
    inp = results.parent / "answers.csv"
    run = load_run(res)
    s = DecisionStore(store_path(res))
    s.record([NewDecision(kind="score", candidate="Felix Moreau", question_id="flask-django-fastapi",
                          old_score=9.42, new_score=2.5, note="memorised one line")], "carol")
    s.close()
    r = run_cli("batch", inp, "--out", d / "report.html", "--out", d / "report.md", "--resume", "--quiet")
    assert r.returncode == 0, r.stderr
    html = (d / "report.html").read_text("utf-8")
    assert "✎ 2.5/10</span> human score by carol" in html and 'id="human-note"' in html
    assert "memorised one line" in html
    md = (d / "report.md").read_text("utf-8")
    assert "✎ 2.5/10 human score by carol" in md
    # The results file is never changed by a review.
    assert res.read_bytes() == results.read_bytes()
    r = run_cli("review", d, "--export", d / "x.html", "--export-graded", d / "g.jsonl")
    assert r.returncode == 0, r.stderr
    assert "1 human grade(s)" in r.stderr
    assert "✎ 2.5/10" in (d / "x.html").read_text("utf-8")
    back = read_graded(d / "g.jsonl", bank=bank)
    assert [(g.question_id, g.score, g.answer) for g in back] == [
        ("flask-django-fastapi", 2.5, run.records[run.index("Felix Moreau", "flask-django-fastapi")].answer)]
    r = run_cli("review", d, "--export", d / "x.txt")
    assert r.returncode == 2 and "--export" in r.stderr and "Traceback" not in r.stderr


def test_export_of_an_unreviewed_run_makes_no_database(results, tmp_path):
    res = fresh_copy(results, tmp_path / "run")
    r = run_cli("review", res, "--export", tmp_path / "r.html", "--export-graded", tmp_path / "g.jsonl")
    assert r.returncode == 0, r.stderr
    assert "0 human grade(s)" in r.stderr and (tmp_path / "g.jsonl").read_text("utf-8") == ""
    assert "human score by" not in (tmp_path / "r.html").read_text("utf-8")
    assert not (tmp_path / "run" / "report.results.jsonl.review.sqlite").exists()


def test_llm_suggestion_accepted_or_rejected_and_its_verdicts_escaped(results, tmp_path):
    """A batch run with --llm records the LLM's grounded fraction and grader's own; accepting takes
    the first, rejecting the second.  The page shows the verdicts as text (rendered in-process)."""
    from fastapi.testclient import TestClient

    from grader.review.app import create_app
    from grader.review.groups import GroupCache
    from grader.review.run import ReviewRun, load_run
    from grader.review.state import ReviewState
    from grader.batch.decisions import DecisionStore, store_path

    run = load_run(fresh_copy(results, tmp_path / "run"))
    i = run.index("Ben Ortiz", "docker")
    llm = {"fraction": 0.4, "deterministic": 0.6, "suggested": 0.45,
           "verdicts": [{"concept": "<img src=x onerror=alert(1)>", "verdict": "covered", "quote": "</li><script>x</script>"}]}
    records = list(run.records)
    records[i] = records[i].model_copy(update={"llm": llm, "flags": records[i].flags + ["llm disagrees: human review"]})
    run = ReviewRun(results_path=run.results_path, records=records)
    state = ReviewState(run, DecisionStore(store_path(run.results_path)), reviewer="al")
    assert any(x.kind == "llm" for x in state.reasons[i])
    assert state.decide(i, "llm-accept").new_score == 4.0
    assert state.decide(i, "llm-reject", seen=state.latest(i).id).new_score == 6.0
    with pytest.raises(Exception, match="no LLM suggestion"):
        state.decide(run.index("Ada Park", "docker"), "llm-accept")
    app = create_app(state, GroupCache(run, lambda: None), token="t" * 32, allowed_hosts={"testserver"},
                     bank_questions=set())
    page = TestClient(app).get(f"/candidate/{run.candidates.index('Ben Ortiz')}", headers={"X-Review-Token": "t" * 32}).text
    sec = page.split(f'id="a{i}"')[1].split("</section>")[0]
    assert "suggests <span class=\"llm-score\">4/10</span>" in sec and 'class="llm-accept"' in sec
    assert "&lt;img src=x onerror=alert(1)&gt;" in sec and "&lt;/li&gt;&lt;script&gt;" in sec
    assert "<img" not in sec and "<script>x" not in sec
    assert "llm-reject 4 → 6" in sec
    state.store.close()
