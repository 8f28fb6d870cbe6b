"""`grader evaluate --llm` and `--repeat N` against the loopback OpenAI-compatible server.

The real pipeline (packaged embedding model, real rubrics), the real `openai` client over
real HTTP to tests/llm_server.py, which answers per seed when a test asks it to.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from conftest import ROOT, grader_cmd
from llm_server import _fake_llm_server, fake_llm, first_words, honest_reply  # noqa: F401

from grader.accuracy.job import EvaluateOptions, evaluate_file

KEY = "sk-test-SECRET-evaluate-9876"
POINTS = {"strong": 9, "paraphrase": 8, "partial": 5, "wrong": 1, "swapped": 2, "hedged": 3}
QUESTIONS = ["cache-invalidation", "put-vs-patch"]


@pytest.fixture(scope="module")
def graded_file(tmp_path_factory):
    """Bank answers of two held-out questions graded by kind, plus an empty one."""
    rows = []
    for q in QUESTIONS:
        for line in (ROOT / "tests" / "data" / "heldout" / f"{q}.jsonl").read_text(encoding="utf-8").splitlines()[:5]:
            r = json.loads(line)
            rows.append({"question_id": q, "answer": r["answer"], "score": POINTS[r["kind"]], "max_score": 10})
    rows.append({"question_id": QUESTIONS[0], "answer": "   ", "score": 0, "max_score": 10})
    p = tmp_path_factory.mktemp("graded") / "graded.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return p, rows


@pytest.fixture
def llm_env(fake_llm, monkeypatch, tmp_path, settings):
    monkeypatch.setenv("GRADER_LLM_BACKOFF", "0.01")
    monkeypatch.setenv("GRADER_LLM_BACKOFF_MAX", "0.05")
    return settings.model_copy(update={
        "openai_base_url": fake_llm.url, "llm_model": "test-model", "cache_dir": tmp_path / "cache",
        "llm_retries": 1, "llm_timeout": 5.0,
    })


def run(path, s, **kw):
    return evaluate_file(EvaluateOptions(file=path, llm=True, **kw), s)


def test_side_by_side_figures_usage_and_cache(fake_llm, llm_env, graded_file):
    path, rows = graded_file
    plain = evaluate_file(EvaluateOptions(file=path), llm_env).evaluation
    out = run(path, llm_env)
    f = out.llm
    asked = len(rows) - 1  # the empty answer is not sent
    assert f.n == len(rows) and f.bank_rubric_rows == len(rows)
    # The deterministic column is exactly what plain evaluate (= grade) measures.
    assert f.deterministic == plain.zero_shot
    assert f.usage.requests == asked == len(fake_llm.requests) and f.usage.reviewed == asked
    assert f.usage.prompt_tokens == 100 * asked and f.requests_per_answer == 1
    assert f.llm is not None and f.llm.n == asked
    for det, res in zip(plain.predictions, f.results):
        assert abs(res.score - det.score) <= 0.15 * res.max_score + 0.01  # bounded shift
    assert f.deterministic_same_rows.n == asked
    # A second run is served by the cache: no request.
    again = run(path, llm_env).llm
    assert again.usage.requests == 0 and again.usage.cached == asked
    assert again.blended == f.blended


def test_invalid_replies_are_counted_not_scored_as_wrong(fake_llm, llm_env, graded_file):
    path, rows = graded_file
    fake_llm.behave("invalid_then_valid", times=10_000)
    f = run(path, llm_env, no_cache=True).llm
    asked = len(rows) - 1
    assert f.usage.invalid == asked and f.usage.repaired == asked and f.usage.errors == asked
    assert f.llm is None  # no valid reply: the LLM column is empty, not zeros
    assert f.blended == f.deterministic  # every row kept its deterministic score


def test_dry_run_counts_and_asks_nothing(fake_llm, llm_env, graded_file):
    path, rows = graded_file
    out = run(path, llm_env, dry_run=True)
    assert out.dry_run_requests == len(rows) - 1 and out.llm is None
    assert out.dry_run_requests and not fake_llm.requests
    assert run(path, llm_env, dry_run=True, repeat=3).dry_run_requests == 3 * (len(rows) - 1)


def _by_seed(names, answer, seed):
    """Even seeds: everything covered; odd seeds: everything missing (an unstable judge)."""
    reply = honest_reply(names, answer)
    if seed % 2:
        reply["concepts"] = [{"name": n, "status": "missing", "quote": ""} for n in names]
        reply["suggested_score"] = 0.0
    return reply


def test_repeat_reports_spread_pass_n_and_uses_the_median(fake_llm, llm_env, graded_file):
    path, rows = graded_file
    fake_llm.behave("by_seed", reply=_by_seed)
    f = run(path, llm_env, repeat=3).llm
    asked = len(rows) - 1
    assert f.usage.requests == 3 * asked and f.usage.cached == 0  # the cache is bypassed
    assert f.requests_per_answer == 3
    assert sorted({r["seed"] for r in fake_llm.requests}) == [42, 43, 44]
    st = f.stability
    assert st.repeat == 3 and st.answers == asked
    assert st.llm_spread_mean > 0 and st.spread_max > 0
    assert 0 <= st.pass_n < 1  # some answers change band with the seed
    for res in f.results:
        if res.band == "no answer":
            continue
        rep = res.llm["repeat"]
        assert rep["n"] == 3 and rep["seeds"] == [42, 43, 44] and len(rep["scores"]) == 3
        # Seeds 42 and 44 cover everything, 43 nothing: the median is a covering review.
        assert res.llm["fraction"] == sorted(rep["llm_fractions"])[1]
        assert res.score == sorted(rep["scores"])[1]


def test_repeat_of_a_stable_judge_has_no_spread(fake_llm, llm_env, graded_file):
    path, rows = graded_file
    st = run(path, llm_env, repeat=2).llm.stability
    assert st.pass_n == 1.0 and st.spread_max == 0 and st.llm_spread_mean == 0


def test_reference_rows_are_judged_against_their_reference_points(fake_llm, llm_env, tmp_path):
    src = (ROOT / "tests" / "data" / "graded-small.jsonl").read_text(encoding="utf-8").splitlines()[:4]
    path = tmp_path / "ref.jsonl"
    path.write_text("\n".join(src) + "\n", encoding="utf-8")
    f = run(path, llm_env).llm
    assert f.reference_rubric_rows == 4 and f.bank_rubric_rows == 0
    sent = [json.loads(line)["reference_answer"] for line in src]
    user = next(m["content"] for m in fake_llm.requests[0]["messages"] if m["role"] == "user")
    assert '"point 1"' in user and sent[0].split(".")[0][:40] in user
    assert f.llm is not None and f.llm.n == 4


def _cli(args, env_extra, tmp_path):
    env = {**os.environ, **env_extra, "GRADER_CACHE_DIR": str(tmp_path / "cache")}
    return subprocess.run(grader_cmd() + args, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)


def test_cli_evaluate_llm_table_and_grade_repeat_never_show_the_key(fake_llm, graded_file, tmp_path):
    path, _ = graded_file
    env = {"OPENAI_BASE_URL": fake_llm.url, "OPENAI_API_KEY": KEY, "GRADER_LLM_MODEL": "test-model"}
    fake_llm.behave("by_seed", reply=_by_seed)
    r = _cli(["evaluate", str(path), "--llm", "--limit", "4", "--repeat", "2"], env, tmp_path)
    assert r.returncode == 0, r.stderr
    for text in ("deterministic", "LLM fraction", "blended", "pass^2", "8 requests", "per answer", "repaired"):
        assert text in r.stdout, (text, r.stdout)
    g = _cli(["grade", "-q", QUESTIONS[0], "-a", "Give every key a TTL so stale data expires.",
              "--llm", "--repeat", "3"], env, tmp_path)
    assert g.returncode == 0, g.stderr
    assert "asked 3 times" in g.stdout and "same band" in g.stdout
    j = _cli(["grade", "-q", QUESTIONS[0], "-a", "Give every key a TTL so stale data expires.",
              "--llm", "--repeat", "3", "--format", "json"], env, tmp_path)
    assert json.loads(j.stdout)["llm"]["repeat"]["n"] == 3
    for out in (r, g, j):
        assert KEY not in out.stdout + out.stderr
    bad = _cli(["evaluate", str(path), "--repeat", "2"], env, tmp_path)
    assert bad.returncode != 0 and "go with --llm" in bad.stderr and "Traceback" not in bad.stderr
