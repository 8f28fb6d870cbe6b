"""The core commands as a user runs them: real processes, real files, real model."""

import json
import subprocess
import sys

import pytest

from conftest import ROOT, grader_cmd

GOOD = ("PUT replaces the whole resource with the full representation; omitted fields are reset. "
        "It is idempotent. PATCH is a partial update that changes only the fields sent.")


def run(*args, input=None, env=None):
    return subprocess.run(grader_cmd() + list(args), input=input, capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=300)


def test_help_does_not_import_heavy_libraries():
    code = ("import sys, grader.cli; heavy=[m for m in ('torch','sentence_transformers','openai',"
            "'numpy','ray') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    r = run("--help")
    assert r.returncode == 0 and "grade" in r.stdout and "ask" in r.stdout
    # Rendering the help of every command, in one process, still loads none of them.
    code = ("import sys\nfrom grader.cli import app\n"
            "for cmd in (['--help'], ['grade', '--help'], ['batch', '--help'], ['evaluate', '--help']):\n"
            "    try:\n        app(cmd, prog_name='grader')\n    except SystemExit:\n        pass\n"
            "print([m for m in ('torch','sentence_transformers','ray','numpy') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_shared_options_read_the_same_in_grade_ask_and_batch():
    from typer.main import get_command

    from grader.cli import app

    root = get_command(app)
    helps = {}
    for name in ("grade", "ask", "batch"):
        for p in root.commands[name].params:
            if p.name in ("llm", "llm_weight", "no_cache", "calibration", "model"):
                helps.setdefault(p.name, set()).add((tuple(p.opts), p.help))
    assert set(helps) == {"llm", "llm_weight", "no_cache", "calibration", "model"}
    assert all(len(v) == 1 for v in helps.values()), helps


def test_questions_list_json_and_table(bank):
    r = run("questions", "list", "--format", "json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert {d["id"] for d in data} == set(bank.questions)
    assert all({"id", "topic", "question"} <= set(d) for d in data)
    r = run("questions", "list", "--topic", "Caching")
    assert r.returncode == 0 and "where-to-cache" in r.stdout and "put-vs-patch" not in r.stdout


def test_questions_show():
    r = run("questions", "show", "put-vs-patch")
    assert r.returncode == 0 and "Model answer" in r.stdout and "idempot" in r.stdout.lower()


def test_unknown_question_is_one_line_exit_2():
    r = run("grade", "--question", "no-such-question", "--answer", "x")
    assert r.returncode == 2
    assert "no-such-question" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_rubric_validate_and_schema():
    r = run("rubric", "validate")
    assert r.returncode == 0, r.stdout + r.stderr
    r = run("rubric", "schema")
    schema = json.loads(r.stdout)
    assert "concepts" in schema["properties"] and "$defs" in schema


def test_rubric_validate_reports_file_and_field(tmp_path):
    rub = tmp_path / "rubrics"
    rub.mkdir()
    (rub / "put-vs-patch.toml").write_text(
        'question_id = "put-vs-patch"\n[[concepts]]\nname="x"\ndescription="d"\nweight=-1\n'
        'terms=["a b"]\nhint="h"\n', encoding="utf-8")
    r = run("rubric", "validate", "--rubrics", str(rub))
    assert r.returncode == 2
    assert "put-vs-patch.toml: concepts.0.weight" in r.stdout
    assert "missing rubric for question 'docker'" in r.stdout


def test_grade_json_with_stdin_and_reports(tmp_path):
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    r = run("grade", "-q", "put-vs-patch", "--format", "json", "--out", str(out_json), input=GOOD)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    for key in ("question_id", "score", "max_score", "band", "components", "concepts", "misconceptions", "flags"):
        assert key in res
    assert set(res["components"]) >= {"keywords", "semantic"}
    assert res["score"] >= 7 and res["band"] == "strong"
    assert all({"name", "weight", "matched", "evidence"} <= set(c) for c in res["concepts"])
    assert json.loads(out_json.read_text()) == res
    r = run("grade", "-q", "put-vs-patch", "--answer", "PATCH replaces the whole resource.", "--out", str(out_md))
    assert r.returncode == 0
    md = out_md.read_text()
    assert "Misconceptions" in md and "Missed" in md and "partial update" in md.lower()


def test_grade_text_shows_covered_missed_and_misconception():
    r = run("grade", "-q", "put-vs-patch", "--answer",
            "PUT is idempotent. PATCH replaces the whole resource.")
    assert r.returncode == 0
    assert "Covered" in r.stdout and "Missed" in r.stdout and "Misconceptions" in r.stdout


def test_grade_unknown_report_format(tmp_path):
    r = run("grade", "-q", "put-vs-patch", "--answer", "x", "--out", str(tmp_path / "r.pdf"))
    assert r.returncode == 2 and "r.pdf" in r.stderr


def test_bad_setting_is_named(tmp_path):
    import os

    env = dict(os.environ, GRADER_THREADS="lots")
    r = run("questions", "list", env=env)
    assert r.returncode == 2 and "threads" in r.stderr and "Traceback" not in r.stderr


def test_grade_with_a_calibration(tmp_path):
    shipped = ROOT / "grader" / "data" / "calibration.json"
    r = run("grade", "-q", "put-vs-patch", "--format", "json", "--answer", GOOD, "--calibration", str(shipped))
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert 0 <= res["score"] <= res["max_score"]
    r = run("grade", "-q", "put-vs-patch", "--answer", GOOD, "--calibration", str(tmp_path / "nope.json"))
    assert r.returncode == 2 and "nope.json" in r.stderr and len(r.stderr.strip().splitlines()) == 1
