"""`grader batch` end to end: real files, real model, real processes."""

import csv
import io
import json
import subprocess

import pytest

from conftest import ROOT, grader_cmd

GOOD = ("PUT replaces the whole resource with the full representation, so omitted fields are reset; "
        "it is idempotent. PATCH is a partial update that changes only the fields sent.")
DOCKER = ("Docker packages an application with its dependencies into an image; containers run it the same "
          "way on every machine, isolated, sharing the host kernel, lighter than virtual machines.")


def run(*args, input=None, cwd=None):
    return subprocess.run(grader_cmd() + list(args), input=input, capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=600)


def write_csv(path, rows, header=("candidate", "question_id", "answer")):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """One batch run shared by the report tests."""
    d = tmp_path_factory.mktemp("batch")
    rows = [
        ("Ann", "put-vs-patch", GOOD),
        ("Ann", "docker", DOCKER),
        ("Bob", "put-vs-patch", GOOD.upper().replace(".", " .")),  # an exact copy after case/space
        ("Bob", "docker", "Docker is a tool."),
        ("Cid", "put-vs-patch", "PATCH replaces the whole resource."),  # skips docker
        ("=cmd|' /C calc'!A0", "docker", '<script>alert("x")</script> <img src=x onerror=alert(1)> '
                                         '<a href="javascript:alert(2)">link</a>'),
    ]
    inp = write_csv(d / "answers.csv", rows)
    outs = [d / n for n in ("r.jsonl", "r.json", "r.csv", "r.md", "r.html")]
    args = ["batch", str(inp), "--results", str(d / "results.jsonl")]
    for o in outs:
        args += ["--out", str(o)]
    r = run(*args)
    assert r.returncode == 0, r.stderr + r.stdout
    return d, r


def test_records_have_the_grade_fields(graded):
    d, _ = graded
    recs = [json.loads(line) for line in (d / "r.jsonl").read_text().splitlines()]
    assert json.loads((d / "r.json").read_text()) == recs
    for rec in recs:
        for key in ("candidate", "question_id", "score", "max_score", "band", "components", "concepts",
                    "misconceptions", "flags"):
            assert key in rec
    by = {(r["candidate"], r["question_id"]): r for r in recs}
    assert by[("Ann", "put-vs-patch")]["score"] >= 7
    assert by[("Cid", "put-vs-patch")]["misconceptions"]
    # A skipped question is a 0 "no answer" row, not a missing one.
    assert by[("Cid", "docker")]["score"] == 0 and by[("Cid", "docker")]["band"] == "no answer"
    assert len(recs) == 8


def test_ranking_and_copies_in_markdown(graded):
    d, r = graded
    md = (d / "r.md").read_text()
    ranking = md.split("## Ranking")[1].split("##")[0]
    assert ranking.index("Ann") < ranking.index("Cid")
    pairs = md.split("## Near-identical answers")[1].split("##")[0]
    assert "Ann" in pairs and "Bob" in pairs and "yes" in pairs
    assert "```mermaid" in md and "Scores by topic" in md and "Most missed" in md


def test_csv_cells_cannot_run_formulas(graded):
    d, _ = graded
    rows = list(csv.DictReader(io.StringIO((d / "r.csv").read_text())))
    cands = {r["candidate"] for r in rows}
    assert "'=cmd|' /C calc'!A0" in cands
    assert not any(v.startswith(("=", "+", "-", "@")) for r in rows for v in r.values() if v)


def test_html_escapes_input(graded):
    d, _ = graded
    html = (d / "r.html").read_text()
    assert '<script>alert("x")</script>' not in html
    assert "<img src=x onerror" not in html
    assert 'href="javascript:' not in html
    assert "&lt;script&gt;" in html


def test_results_are_reproducible_byte_for_byte(graded, tmp_path):
    d, _ = graded
    again = tmp_path / "again.jsonl"
    r = run("batch", str(d / "answers.csv"), "--results", str(again), "--quiet")
    assert r.returncode == 0, r.stderr
    assert again.read_bytes() == (d / "results.jsonl").read_bytes()


def test_existing_output_needs_force(graded):
    d, _ = graded
    r = run("batch", str(d / "answers.csv"), "--results", str(d / "results.jsonl"), "--out", str(d / "r.md"))
    assert r.returncode == 2 and "already exists" in r.stderr and "--force" in r.stderr


def test_resume_grades_each_row_once(graded, tmp_path):
    d, _ = graded
    full = (d / "results.jsonl").read_text().splitlines(keepends=True)
    partial = tmp_path / "results.jsonl"
    # Two rows done, then a record torn by a crash in the middle of a write.
    partial.write_text("".join(full[:2]) + full[2][: len(full[2]) // 2])
    r = run("batch", str(d / "answers.csv"), "--results", str(partial), "--resume", "--quiet")
    assert r.returncode == 0, r.stderr
    assert partial.read_text() == "".join(full)


@pytest.mark.parametrize("content,needle", [
    ("candidate,question_id,answer\nAnn,nope,hello\n", "answers.csv:2: question_id: unknown question id 'nope'"),
    ("candidate,answer\nAnn,hello\n", "answers.csv:1: question_id: missing column"),
    ("", "answers.csv: empty file"),
    ("candidate,question_id,answer\nAnn,docker,a\nAnn,docker,b\n", "answers.csv:3: candidate: duplicate answer"),
    ("candidate,question_id,answer\n,docker,a\n", "answers.csv:2: candidate: empty"),
])
def test_bad_input_named_before_grading(tmp_path, content, needle):
    p = tmp_path / "answers.csv"
    p.write_text(content, encoding="utf-8")
    r = run("batch", str(p), "--results", str(tmp_path / "res.jsonl"))
    assert r.returncode == 2
    assert needle in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "res.jsonl").exists()


def test_skip_invalid_grades_the_rest(tmp_path):
    p = write_csv(tmp_path / "a.csv", [("Ann", "docker", DOCKER), ("Ann", "nope", "x")])
    r = run("batch", str(p), "--skip-invalid", "--results", str(tmp_path / "res.jsonl"), "--quiet")
    assert r.returncode == 0, r.stderr
    assert "skipped" in r.stderr and "a.csv:3" in r.stderr
    assert len((tmp_path / "res.jsonl").read_text().splitlines()) == 1


def test_jsonl_from_stdin_with_bom_and_own_reference(tmp_path):
    rows = [
        {"candidate": "Ann", "question_id": "q-custom", "question": "What is a mutex?",
         "reference_answer": "A mutex is a lock that lets only one thread at a time enter a critical section.",
         "answer": "A lock so that only one thread at a time runs the critical section.", "submission_id": "s1"},
        {"candidate": "Bob", "question_id": "q-custom", "question": "What is a mutex?",
         "reference_answer": "A mutex is a lock that lets only one thread at a time enter a critical section.",
         "answer": "A kind of database index."},
    ]
    text = "\ufeff" + "\n".join(json.dumps(r) for r in rows) + "\n"
    out = tmp_path / "out.jsonl"
    r = run("batch", "-", "--out", str(out), "--quiet", input=text)
    assert r.returncode == 0, r.stderr
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert recs[0]["submission_id"] == "s1"
    assert recs[0]["score"] > recs[1]["score"]


def test_json_list_input_and_candidate_csv(tmp_path):
    p = tmp_path / "a.json"
    p.write_text(json.dumps([{"candidate": "Ann", "question_id": "docker", "answer": DOCKER},
                             {"candidate": "Bob", "question_id": "docker", "answer": "no idea"}]))
    out = tmp_path / "c.csv"
    r = run("batch", str(p), "--out", str(out), "--by", "candidate", "--quiet", "--fail-under", "99")
    assert r.returncode == 3
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [x["candidate"] for x in rows] == ["Ann", "Bob"] and rows[0]["rank"] == "1"
    assert "docker" in rows[0]


def test_the_embedding_thread_stops_after_its_slice(grader_):
    """A batch embeds the next window on a thread while it grades the one before; Ctrl-C stops
    that thread after the slice it is in (whole processes: test_cli_usability's Ctrl-C test)."""
    import time

    from grader.batch.run import EMBED_THREAD_SLICE, _Embedding

    texts = [f"Answer number {i}: containers share the host kernel, {i} times over." for i in range(40 * EMBED_THREAD_SLICE)]
    done: list[int] = []
    e = _Embedding(grader_, texts, done.append)
    e.start()
    while not done:
        time.sleep(0.01)
    t0 = time.monotonic()
    e.stop()
    assert time.monotonic() - t0 < 30
    assert e.result() is None and 0 < sum(done) < len(texts)
