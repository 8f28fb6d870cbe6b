"""What a CLI user expects: -h and --version, plain help, Ctrl-C, every input problem listed,
`batch --check`, questions asked per candidate, reproducible and small reports."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from conftest import ROOT, grader_cmd

DOCKER = ("Docker packages an application with its dependencies into an image; containers run it the same "
          "way on every machine, isolated, sharing the host kernel, lighter than virtual machines.")
PATCH = "PUT replaces the whole resource; PATCH is a partial update that changes only the fields sent."
EXAMPLE = ROOT / "examples" / "candidates.csv"


def run(*args, input=None, cwd=None, env=None):
    return subprocess.run(grader_cmd() + [str(a) for a in args], input=input, capture_output=True, text=True,
                          cwd=cwd or ROOT, env=env, timeout=600)


def invoke(*args):
    """The CLI in this process (the model loads once for every test that grades)."""
    from grader.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "100"})


def write_csv(path, rows, header=("candidate", "question_id", "answer"), delimiter=","):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter=delimiter)
        w.writerow(header)
        w.writerows(rows)
    return path


def all_commands():
    from typer.main import get_command

    from grader.cli import app

    def walk(cmd, path):
        yield path
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from walk(sub, [*path, name])

    return list(walk(get_command(app), []))


# ----------------------------------------------------------------------------- 1. -h, --version, completion, Ctrl-C


def test_version_and_short_help_on_every_command():
    r = run("--version")
    assert r.returncode == 0 and re.fullmatch(r"grader \d+\.\d+\.\d+\S*", r.stdout.strip()), r.stdout
    for path in all_commands():
        short, long = invoke(*path, "-h"), invoke(*path, "--help")
        assert short.exit_code == 0, (path, short.output)
        assert short.output == long.output and "Usage: " in short.output


def test_shell_completion_is_offered_and_completes_commands():
    assert "--install-completion" in invoke("--help").output
    env = dict(os.environ, _GRADER_COMPLETE="complete_bash", COMP_WORDS="grader ba", COMP_CWORD="1")
    r = subprocess.run(grader_cmd(), capture_output=True, text=True, env=env, timeout=60)
    assert r.stdout.split() == ["batch"]


def _interrupt(cmd, *, when, timeout=300, **kw):
    """Start `cmd`, send Ctrl-C (SIGINT) once `when()` is true; (returncode, stderr)."""
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    t0 = time.monotonic()
    while not when() and p.poll() is None and time.monotonic() - t0 < timeout:
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    return p.returncode, err


def test_ctrl_c_exits_130_with_one_line():
    t0 = time.monotonic()
    # `grade` waits for the answer on standard input, which never comes.
    code, err = _interrupt(grader_cmd() + ["grade", "-q", "docker"], when=lambda: time.monotonic() - t0 > 3)
    assert code == 130, err
    assert err.strip() == "interrupted"


def test_ctrl_c_in_batch_keeps_a_whole_journal_and_resume_finishes(tmp_path):
    rows = [(f"Cand {i}", q, f"{a} ({i})") for i in range(60) for q, a in (("docker", DOCKER), ("put-vs-patch", PATCH))]
    inp = write_csv(tmp_path / "a.csv", rows)
    res = tmp_path / "r.results.jsonl"

    def started() -> bool:
        return res.exists() and res.read_bytes().count(b"\n") >= 4

    cmd = grader_cmd() + ["batch", str(inp), "-o", str(tmp_path / "r.md"), "--chunk-size", "2"]
    code, err = _interrupt(cmd, when=started)
    assert code == 130, err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and "--resume" in lines[0] and str(res) in lines[0] and "Traceback" not in err
    data = res.read_bytes()
    assert data.endswith(b"\n")  # whole records only
    done = [json.loads(x) for x in data.splitlines()]
    assert 0 < len(done) < len(rows)
    r = run("batch", inp, "-o", tmp_path / "r.md", "--resume", "--quiet")
    assert r.returncode == 0, r.stderr
    keys = [(x["candidate"], x["question_id"]) for x in map(json.loads, res.read_text().splitlines())]
    assert len(keys) == len(set(keys)) == len(rows)


# ----------------------------------------------------------------------------- 2. help text


def test_help_has_plain_metavars_whole_summaries_and_no_readme_pointers():
    for path in all_commands():
        out = invoke(*path, "--help").output
        assert not re.search(r"<(str|int|float|path|list\[|bool)", out, re.I), (path, out)
        assert "README" not in out and "docs/" not in out, (path, out)
    top = invoke("--help").output
    assert "..." not in top.split("Commands:")[1]
    batch = invoke("batch", "--help").output
    assert "--out FILE" in batch and "--pass-mark PERCENT" in batch and "--chunk-size N" in batch
    statuses = batch.split("Exit status:")[1]
    for code in ("0", "1", "2", "3", "130"):
        assert re.search(rf"^\s+{code}\s+\S", statuses, re.M), statuses


# ----------------------------------------------------------------------------- 4. batch input


def test_every_problem_listed_with_a_suggestion_then_exit_2(tmp_path):
    rows = [("Ann", "dockr", "x"), ("Ann", "docker", DOCKER)] + [(f"C{i}", f"zz-nope-{i}", "x") for i in range(25)]
    inp = write_csv(tmp_path / "answers.csv", rows)
    r = run("batch", inp, "-o", tmp_path / "r.md")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines[0] == f"error: {inp}:2: question_id: unknown question id 'dockr'; did you mean 'docker'?"
    assert sum(1 for x in lines if x.startswith("error: ")) == 20
    assert "… and 6 more" in lines and not (tmp_path / "r.md").exists()


def test_check_validates_without_loading_a_model(tmp_path):
    code = ("import sys\nfrom grader.cli import app\n"
            f"try:\n    app(['batch', {str(EXAMPLE)!r}, '--check'], prog_name='grader')\n"
            "except SystemExit as e:\n    print('exit', e.code)\n"
            "print([m for m in ('torch', 'sentence_transformers') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.stdout.strip().splitlines()[-2:] == ["exit 0", "[]"], out.stdout + out.stderr
    assert "45 row(s), 45 valid; 6 candidate(s), 8 question(s), 3 skipped question(s); 0 problem(s)" in out.stdout
    bad = write_csv(tmp_path / "b.csv", [("Ann", "docker", "x"), ("Ann", "docker", "y"), ("Bob", "orm", "z")])
    r = run("batch", bad, "--check")
    assert r.returncode == 2 and "b.csv:3: candidate: duplicate answer" in r.stderr
    assert "3 row(s), 2 valid" in r.stdout and "1 problem(s)" in r.stdout


def test_semicolon_delimited_file_is_read(tmp_path):
    inp = write_csv(tmp_path / "semi.csv", [("Ann", "docker", "Images; containers, layers."), ("Bob", "docker", "x")],
                    delimiter=";")
    r = run("batch", inp, "--check")
    assert r.returncode == 0, r.stderr
    assert "2 row(s), 2 valid; 2 candidate(s), 1 question(s)" in r.stdout
    half = tmp_path / "half.csv"
    half.write_text("candidate;question_id\nAnn;docker\n", encoding="utf-8")
    r = run("batch", half, "--check")
    assert r.returncode == 2 and "looks delimited by ';'" in r.stderr and "'answer'" in r.stderr


def test_questions_assigned_per_candidate_are_not_penalised(tmp_path):
    rows = [("Ann", "docker", DOCKER, "docker put-vs-patch"), ("Bob", "docker", DOCKER, "docker")]
    inp = write_csv(tmp_path / "a.csv", rows, header=("candidate", "question_id", "answer", "questions"))
    out = tmp_path / "r.jsonl"
    r = invoke("batch", inp, "-o", out, "-o", tmp_path / "c.csv", "--by", "candidate", "-o", tmp_path / "r.md",
               "--quiet")
    assert r.exit_code == 0, r.output
    recs = [(x["candidate"], x["question_id"], x["band"]) for x in map(json.loads, out.read_text().splitlines())]
    assert ("Ann", "put-vs-patch", "no answer") in recs
    assert not any(c == "Bob" and q == "put-vs-patch" for c, q, _ in recs)
    by = {x["candidate"]: x for x in csv.DictReader(open(tmp_path / "c.csv", encoding="utf-8"))}
    assert by["Bob"]["max_total"] == "10" and by["Bob"]["skipped"] == "0" and by["Bob"]["put-vs-patch"] == ""
    assert by["Ann"]["max_total"] == "20" and by["Ann"]["skipped"] == "1"
    assert float(by["Bob"]["percent"]) > float(by["Ann"]["percent"])  # same answer, asked half as much
    assert "2 answers · 1 skipped · 2 candidates · 2 questions" in (tmp_path / "r.md").read_text()
    # --questions: one set for everyone; a row outside it is a problem.
    r = run("batch", write_csv(tmp_path / "b.csv", [("Ann", "docker", "x"), ("Bob", "orm", "y")]),
            "--questions", "docker,put-vs-patch", "--check")
    assert r.returncode == 2 and "b.csv:3: question_id: 'orm' is not among the questions 'Bob' was asked" in r.stderr


def test_second_run_with_other_outputs_has_its_own_journal(tmp_path):
    inp = write_csv(tmp_path / "a.csv", [("Ann", "docker", DOCKER)])
    assert invoke("batch", inp, "-o", tmp_path / "one.md", "--quiet").exit_code == 0
    r = invoke("batch", inp, "-o", tmp_path / "two.md", "--quiet")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "one.results.jsonl").exists() and (tmp_path / "two.results.jsonl").exists()
    r = run("batch", inp, "-o", tmp_path / "one.md")
    assert r.returncode == 2 and "--resume" in r.stderr and "--force" in r.stderr and "--results" in r.stderr


# ----------------------------------------------------------------------------- 5-7. reports


@pytest.fixture(scope="module")
def example_runs(tmp_path_factory):
    """The bundled example graded twice into two folders, every format."""
    dirs = []
    for name in ("one", "two"):
        d = tmp_path_factory.mktemp(name)
        outs = [d / f"example.{ext}" for ext in ("html", "md", "csv", "jsonl", "json")]
        r = invoke("batch", EXAMPLE, *[x for o in outs for x in ("-o", o)], "--quiet")
        assert r.exit_code == 0, r.output
        dirs.append(d)
    return dirs


def test_reports_are_byte_for_byte_reproducible(example_runs):
    one, two = example_runs
    for ext in ("html", "md", "csv", "jsonl", "json"):
        assert (one / f"example.{ext}").read_bytes() == (two / f"example.{ext}").read_bytes(), ext
    assert "UTC" not in (one / "example.md").read_text() and "UTC" not in (one / "example.html").read_text()


def test_timestamp_only_when_asked(tmp_path):
    inp = write_csv(tmp_path / "a.csv", [("Ann", "docker", DOCKER)])
    r = invoke("batch", inp, "-o", tmp_path / "r.md", "--timestamp", "--quiet")
    assert r.exit_code == 0, r.output
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", (tmp_path / "r.md").read_text())


def test_header_counts_rows_given_and_skipped_separately(example_runs):
    md = (example_runs[0] / "example.md").read_text()
    assert "45 answers · 3 skipped · 6 candidates · 8 questions" in md
    html = (example_runs[0] / "example.html").read_text()
    assert "45 answers · 3 skipped · 6 candidates · 8 questions" in html


def test_example_html_is_small_and_offline(example_runs):
    path = example_runs[0] / "example.html"
    assert path.stat().st_size <= 1_500_000
    html = path.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert "<script" not in html  # charts are inline SVG: nothing to run or fetch
    for chart in ("chart-distribution", "chart-topics"):
        assert "<svg" in html.split(f'id="{chart}"')[1][:2000], chart
