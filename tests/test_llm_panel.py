"""A panel of judges (GRADER_LLM_PANEL) on the loopback server, which answers per model."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from conftest import ROOT, grader_cmd
from llm_server import _fake_llm_server, fake_llm  # noqa: F401

from grader.errors import ConfigError
from grader.llm import BlendParams, apply_review
from grader.llm.batch import make_provider
from grader.llm.panel import PANEL_DISAGREES, PanelFeedback, majority

QID = "cache-invalidation"
ANSWER = (
    "Give every cache entry a TTL so it expires after a few minutes and stale data is bounded. "
    "Use cache-aside: read the cache first, and on a cache miss load the row from the database "
    "and populate the cache. When the row is updated, delete the key."
)
KEY = "sk-judge-SECRET-4242"
PARAMS = BlendParams(weight=0.3, max_shift=0.15)


def _none(names, answer):
    return {"concepts": [{"name": n, "status": "missing", "quote": ""} for n in names], "misconceptions": [],
            "suggested_score": 0.0, "strengths": [], "improvements": [], "feedback": "Nothing is shown here.",
            "injection_suspected": False}


def _panel(fake, monkeypatch, settings, tmp_path, models):
    monkeypatch.setenv("JUDGE_KEY", KEY)
    monkeypatch.setenv("GRADER_LLM_PANEL", json.dumps(
        [{"base_url": fake.url, "model": m, **({"api_key_env": "JUDGE_KEY"} if i == len(models) - 1 else {})}
         for i, m in enumerate(models)]))
    monkeypatch.setenv("GRADER_LLM_RETRIES", "0")
    return make_provider(settings.model_copy(update={"cache_dir": tmp_path / "cache", "llm_retries": 0}))


@pytest.fixture(scope="module")
def case(bank, grader_):
    q, rubric = bank.get(QID), bank.rubrics[QID]
    return q, rubric, grader_.grade(q, rubric, ANSWER)


def test_majority_ties_go_to_the_lower_credit():
    assert majority(["covered", "covered", "missing"]) == "covered"
    assert majority(["covered", "missing"]) == "missing"
    assert majority(["covered", "partial", "partial"]) == "partial"


def test_the_majority_decides_disagreement_is_flagged_and_each_judge_is_counted(fake_llm, monkeypatch, settings,
                                                                                 tmp_path, case):
    q, rubric, det = case
    p = _panel(fake_llm, monkeypatch, settings, tmp_path, ["judge-a", "judge-b", "judge-c"])
    assert isinstance(p, PanelFeedback)
    fake_llm.behave("by_model", replies={"judge-a": None, "judge-b": None, "judge-c": _none})
    review = p.review(q, rubric, ANSWER, det)
    res = apply_review(det, review, rubric, PARAMS)
    assert {v["name"] for v in res.llm["verdicts"] if v["status"] == "covered"} >= {"TTL expiry", "Cache-aside"}
    assert PANEL_DISAGREES in res.flags and res.llm["panel_disagrees"]
    assert [j["model"] for j in res.llm["panel"]] == ["judge-a", "judge-b", "judge-c"]
    assert all(j["requests"] == 1 for j in res.llm["panel"]) and review.requests == 3
    assert abs(res.score - det.score) <= PARAMS.max_shift * det.max_score + 1e-9
    # The last judge sends its own key; the others none of it.
    auth = [h.get("authorization", "") for h in fake_llm.headers]
    assert auth.count(f"Bearer {KEY}") == 1


def test_a_failing_judge_is_left_out_and_its_key_never_shown(fake_llm, monkeypatch, settings, tmp_path, case):
    q, rubric, det = case
    p = _panel(fake_llm, monkeypatch, settings, tmp_path, ["judge-a", "judge-b", "judge-c"])
    fake_llm.behave("by_model", replies={"judge-a": None, "judge-b": None, "judge-c": "error"})
    res = apply_review(det, p.review(q, rubric, ANSWER, det), rubric, PARAMS)
    assert res.llm["error"] is None and PANEL_DISAGREES not in res.flags  # the two that answered agree
    assert res.llm["panel"][2]["error"].startswith("HTTP 500")
    assert KEY not in json.dumps(res.model_dump())
    fake_llm.behave("by_model", replies={"judge-a": "error", "judge-b": "error", "judge-c": "error"})
    none = apply_review(det, p.review(q, rubric, ANSWER + " ", det), rubric, PARAMS)
    assert none.score == det.score and "llm error" in none.flags and KEY not in json.dumps(none.model_dump())


def test_a_judge_whose_key_variable_is_unset_is_a_clear_error(monkeypatch, settings):
    monkeypatch.setenv("GRADER_LLM_PANEL", json.dumps([{"model": "a", "base_url": "http://127.0.0.1:9/v1"},
                                                        {"model": "b", "api_key_env": "NOT_SET_ANYWHERE"}]))
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    with pytest.raises(ConfigError, match="NOT_SET_ANYWHERE"):
        make_provider(settings)


def test_cli_evaluate_with_a_panel_reports_each_judge(fake_llm, tmp_path):
    lines = (ROOT / "tests" / "data" / "heldout" / f"{QID}.jsonl").read_text(encoding="utf-8").splitlines()[:3]
    path = tmp_path / "g.jsonl"
    path.write_text("".join(json.dumps({"question_id": QID, "answer": json.loads(x)["answer"], "score": 5,
                                        "max_score": 10}) + "\n" for x in lines), encoding="utf-8")
    fake_llm.behave("by_model", replies={"judge-a": None, "judge-b": _none})
    env = {**os.environ, "GRADER_CACHE_DIR": str(tmp_path / "cache"), "JUDGE_KEY": KEY,
           "GRADER_LLM_PANEL": json.dumps([{"base_url": fake_llm.url, "model": "judge-a"},
                                           {"base_url": fake_llm.url, "model": "judge-b", "api_key_env": "JUDGE_KEY"}])}
    r = subprocess.run(grader_cmd() + ["evaluate", str(path), "--llm"], capture_output=True, text=True, cwd=ROOT,
                       env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "judge judge-a: 3 requests" in r.stdout and "judge judge-b: 3 requests" in r.stdout
    assert "disagreed on 3 of 3" in r.stdout
    assert KEY not in r.stdout + r.stderr
