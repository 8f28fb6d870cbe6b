"""`grader batch --llm` against the loopback OpenAI-compatible server: concurrency, usage, dry run, cache."""

import json
import os
import subprocess

from conftest import ROOT, grader_cmd
from llm_server import _fake_llm_server, fake_llm  # noqa: F401
from test_batch import DOCKER, GOOD, write_csv

KEY = "sk-test-BATCHSECRET-9876"


def run(args, fake, tmp_path, **extra):
    env = dict(os.environ, OPENAI_BASE_URL=fake.url, OPENAI_API_KEY=KEY, GRADER_LLM_MODEL="test-model",
               GRADER_CACHE_DIR=str(tmp_path / "cache"), GRADER_LLM_CONCURRENCY="4")
    env.update(extra)
    return subprocess.run(grader_cmd() + args, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)


def test_batch_llm_reviews_every_answer_and_caches(fake_llm, tmp_path):
    inp = write_csv(tmp_path / "a.csv", [("Ann", "put-vs-patch", GOOD), ("Ann", "docker", DOCKER),
                                         ("Bob", "docker", "Docker is a tool for containers and images."),
                                         ("Bob", "put-vs-patch", "")])
    dry = run(["batch", str(inp), "--llm", "--dry-run"], fake_llm, tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "3 LLM request(s) would be made" in dry.stdout and not fake_llm.requests
    out = tmp_path / "r.jsonl"
    r = run(["batch", str(inp), "--llm", "--out", str(out), "--results", str(tmp_path / "res.jsonl")], fake_llm, tmp_path)
    assert r.returncode == 0, r.stderr
    assert len(fake_llm.requests) == 3  # the empty answer makes no request
    assert "3 reviewed" in r.stdout and "tokens" in r.stdout
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    reviewed = [x for x in recs if x["components"]["llm"] is not None]
    assert len(reviewed) == 3 and all(x["feedback"] for x in reviewed)
    # A re-run is served from the cache: no new request.
    n = len(fake_llm.requests)
    r = run(["batch", str(inp), "--llm", "--results", str(tmp_path / "res2.jsonl")], fake_llm, tmp_path)
    assert r.returncode == 0 and len(fake_llm.requests) == n and "3 from cache" in r.stdout
    for f in [out, tmp_path / "res.jsonl", tmp_path / "res2.jsonl", *(tmp_path / "cache").rglob("*")]:
        if f.is_file():
            assert KEY.encode() not in f.read_bytes(), f
    assert KEY not in r.stdout + r.stderr


def test_batch_llm_errors_keep_scores(fake_llm, tmp_path):
    fake_llm.behave("error", status=500)
    inp = write_csv(tmp_path / "a.csv", [("Ann", "docker", DOCKER)])
    out = tmp_path / "r.jsonl"
    r = run(["batch", str(inp), "--llm", "--out", str(out), "--quiet"], fake_llm, tmp_path,
            GRADER_LLM_RETRIES="1")
    assert r.returncode == 0, r.stderr
    rec = json.loads(out.read_text())
    assert "llm error" in rec["flags"] and rec["score"] > 0


def test_batch_llm_without_settings_says_why(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI")}
    inp = write_csv(tmp_path / "a.csv", [("Ann", "docker", DOCKER)])
    r = subprocess.run(grader_cmd() + ["batch", str(inp), "--llm"], capture_output=True, text=True, cwd=ROOT,
                       env=env, timeout=120)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1


def test_batch_llm_with_a_server_failing_at_random(fake_llm, tmp_path):
    """20% of requests fail at random: every answer is graded, each failure marked, none lost."""
    import sys

    sys.path.insert(0, str(ROOT))
    from bench.gen import generate, write

    fake_llm.behave("random_failures", share=0.2, seed=3)
    rows = generate(120, seed=17)
    inp = tmp_path / "a.csv"
    write(rows, inp)
    out = tmp_path / "r.jsonl"
    r = run(["batch", str(inp), "--llm", "--out", str(out), "--quiet"], fake_llm, tmp_path,
            GRADER_LLM_RETRIES="0", GRADER_LLM_CONCURRENCY="8")
    assert r.returncode == 0, r.stderr
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    graded = [x for x in recs if x["band"] != "no answer"]
    assert {(x["candidate"], x["question_id"]) for x in graded} == {(c, q) for c, q, _ in rows}
    failed = [x for x in graded if "llm error" in x["flags"]]
    reviewed = [x for x in graded if x["components"]["llm"] is not None]
    assert len(failed) + len(reviewed) == len(graded) == len(rows)
    assert 0.08 * len(rows) <= len(failed) <= 0.35 * len(rows)
    assert all(x["score"] >= 0 and x["llm"] and x["llm"].get("error") for x in failed)


def test_batch_llm_runs_the_configured_mode(fake_llm, tmp_path):
    """GRADER_LLM_MODE=checklist reaches batch as it reaches grade: one question per concept."""
    inp = write_csv(tmp_path / "a.csv", [("Ann", "put-vs-patch", GOOD)])
    out = tmp_path / "r.jsonl"
    r = run(["batch", str(inp), "--llm", "--out", str(out), "--results", str(tmp_path / "res.jsonl")], fake_llm,
            tmp_path, GRADER_LLM_MODE="checklist")
    assert r.returncode == 0, r.stderr
    assert fake_llm.checklist_requests > 1 and fake_llm.checklist_requests == len(fake_llm.requests)
    rec = json.loads(out.read_text().splitlines()[0])
    assert rec["llm"]["mode"] == "checklist"
