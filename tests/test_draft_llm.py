"""`grader rubric draft --llm` against a real HTTP server speaking the OpenAI protocol.

The real `openai` client and real HTTP on 127.0.0.1 (tests/llm_server.py); no embedding
model is needed (drafting does not embed).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tomllib

import pytest

from conftest import ROOT, grader_cmd
from llm_server import Reply, _fake_llm_server, fake_llm  # noqa: F401

from grader.scoring.draft import draft_rubric
from grader.llm.client import OpenAIFeedback
from grader.llm.drafting import (
    DraftReply, draft_json_schema, draft_rubric_llm, parse_draft, reply_to_rubric,
)
from grader.llm.options import LLMOptions
from grader.llm.cache import ReplyCache
from grader.models import Rubric

KEY = "sk-test-SECRET-1234"
QID = "cache-invalidation"

# Every concept below is stated by the bank's model answer of QID.
GOOD = {
    "concepts": [
        {"name": "TTL expiry", "weight": 3, "required": True,
         "terms": ["ttl", "time to live", "expires after"],
         "description": "Entries expire after a time to live, which bounds staleness.",
         "hint": "Mention a TTL."},
        {"name": "Cache-aside", "weight": 3, "required": False,
         "terms": ["cache-aside", "lazy loading", "on a miss"],
         "description": "Read the cache first, load from the database on a miss and populate it.",
         "hint": "Describe cache-aside."},
        {"name": "Write-through and write-behind", "weight": 2, "required": False,
         "terms": ["write-through", "write-behind", "write-back"],
         "description": "Write-through updates the cache with the database write; write-behind flushes later.",
         "hint": "Compare write-through and write-behind."},
    ],
    "misconceptions": [
        {"name": "Caches are always fresh", "terms": ["cache is always fresh", "never stale"],
         "why": "Every strategy but synchronous write-through can serve stale data.", "penalty": 1},
    ],
}
# Nothing of it is in the model answer (the question's word "cache" does not count).
HALLUCINATED = {
    "name": "Quantum replication", "weight": 2, "required": False,
    "terms": ["quantum entanglement", "qubit mirroring"],
    "description": "Replicas synchronise instantly through quantum entanglement.",
    "hint": "Mention quantum replication.",
}


def provider(fake, tmp_path=None, *, retries=1, server="generic", url=None, key=KEY):
    opts = LLMOptions(llm_backoff=0.01, llm_backoff_max=0.05, llm_server=server)
    cache = ReplyCache(tmp_path / "llm.sqlite") if tmp_path is not None else None
    return OpenAIFeedback(model="test-model", base_url=url or fake.url, api_key=key, timeout=2.0,
                          retries=retries, options=opts, cache=cache)


@pytest.fixture(scope="module")
def q(bank):
    return bank.get(QID)


def draft(p, q):
    return draft_rubric_llm(p, q.id, q.model_answer, q.question)


def read_back(d, q) -> Rubric:
    return Rubric.model_validate(tomllib.loads(d.toml(q.question)))


def script(fake, monkeypatch, replies: list[Reply]):
    """The server answers with these replies in turn (the last one repeats)."""
    def respond(body, n, auth):
        return replies[min(n, len(replies)) - 1]

    monkeypatch.setattr(fake, "_respond", respond)


# ----------------------------------------------------------------------------- the good path


def test_good_reply_becomes_a_valid_rubric_from_the_reply(fake_llm, q):
    fake_llm.behave("reply", reply=GOOD)
    d = draft(provider(fake_llm), q)
    assert d.llm and d.warning is None and d.requests == 1 and not d.repaired
    assert [c.name for c in d.rubric.concepts] == [c["name"] for c in GOOD["concepts"]]
    assert d.rubric.concepts[0].required and d.rubric.concepts[0].weight == 3
    assert d.rubric.question_id == QID
    assert [m.name for m in d.rubric.misconceptions] == ["Caches are always fresh"]
    again = read_back(d, q)
    assert again == d.rubric
    text = d.toml(q.question)
    assert "Proposed by the LLM test-model" in text and "[[misconceptions]]" in text
    body = fake_llm.requests[0]
    assert body["temperature"] == 0 and body["seed"] == 42 and body["model"] == "test-model"
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == draft_json_schema(bounded=True)
    assert q.model_answer in body["messages"][1]["content"]


def test_fixups_clamp_weights_drop_empty_terms_and_merge_duplicates(q):
    reply = DraftReply.model_validate({"concepts": [
        {"name": "  TTL expiry ", "weight": 500, "terms": ["ttl", "", "  ", "TTL", "x" * 250],
         "description": "", "hint": ""},
        {"name": "ttl EXPIRY", "weight": -2, "terms": "time to live; expires after", "description": "d"},
        {"name": "Cache-aside", "weight": "0", "terms": ["lazy loading"],
         "description": "Populate on a miss.", "required": "yes"},
        {"name": "Restating", "weight": 1, "terms": ["cache", "database consistency"],
         "description": "Keep the cache consistent with the database."},
    ], "misconceptions": [
        # The model answer says write-behind "risks losing data": not a misconception.
        {"name": "Write-behind loses data", "terms": ["risks losing data"], "why": "w", "penalty": 3},
        {"name": "Deletes are enough", "terms": ["deleting is enough"], "why": "Races.", "penalty": 1e9},
    ]})
    conv = reply_to_rubric(reply, q.id, q.model_answer, q.question)
    r = conv.rubric
    assert [c.name for c in r.concepts] == ["TTL expiry", "Cache-aside"]
    ttl, aside = r.concepts
    assert ttl.weight == 100 and ttl.terms == ["ttl", "time to live", "expires after"]
    assert ttl.description == "TTL expiry" and ttl.hint == "Mention TTL expiry."
    assert aside.weight == 0.1 and aside.required
    assert [m.name for m in r.misconceptions] == ["Deletes are enough"]
    assert r.misconceptions[0].penalty == r.points
    assert any("no usable term" in n and n.endswith(": Restating") for n in conv.notes)
    assert any("the model answer itself states" in n for n in conv.notes)
    assert any("clamped 2 weight(s)" in n for n in conv.notes)


def test_control_characters_and_quotes_cannot_break_the_toml(fake_llm, q):
    bad = json.loads(json.dumps(GOOD))
    bad["concepts"][0]["name"] = 'TTL "expiry"\x00\x1b\r\nnow'
    bad["concepts"][0]["hint"] = "a \\ backslash\t and \"quotes\" \u2028 here"
    bad["misconceptions"][0]["why"] = 'Stale data: "always" \x07 wrong \\'
    fake_llm.behave("reply", reply=bad)
    d = draft(provider(fake_llm), q)
    assert d.llm, d.warning
    assert read_back(d, q) == d.rubric


def test_reply_cached_second_draft_makes_no_request(fake_llm, q, tmp_path):
    fake_llm.behave("reply", reply=GOOD)
    d1 = draft(provider(fake_llm, tmp_path), q)
    d2 = draft(provider(fake_llm, tmp_path), q)
    assert d1.llm and not d1.cached and d2.llm and d2.cached
    assert len(fake_llm.requests) == 1 and d2.rubric == d1.rubric


# ----------------------------------------------------------------------------- repair, faults


def test_malformed_json_then_a_good_repair(fake_llm, q, monkeypatch):
    script(fake_llm, monkeypatch, [
        Reply(content='{"concepts": [{"name": "TTL", "terms": ["ttl"'),  # cut off mid-JSON
        Reply(content="Here is the fixed rubric:\n```json\n" + json.dumps(GOOD) + "\n```"),
    ])
    d = draft(provider(fake_llm), q)
    assert d.llm and d.repaired and d.requests == 2 and d.warning is None
    assert [c.name for c in d.rubric.concepts] == [c["name"] for c in GOOD["concepts"]]
    second = fake_llm.requests[1]["messages"]
    assert second[-2]["role"] == "assistant" and second[-2]["content"].startswith('{"concepts"')
    assert second[-1]["role"] == "user" and "not valid" in second[-1]["content"]


def test_invalid_after_the_repair_falls_back(fake_llm, q, monkeypatch):
    script(fake_llm, monkeypatch, [Reply(content='{"concepts": "all of them"}')])
    d = draft(provider(fake_llm), q)
    assert not d.llm and d.requests == 2
    assert d.warning.startswith("invalid reply") and "after one repair" in d.warning
    assert d.rubric == draft_rubric(q.id, q.model_answer, q.question)


def test_server_without_json_schema_falls_back_to_json_object(fake_llm, q, monkeypatch):
    def respond(body, n, auth):
        if (body.get("response_format") or {}).get("type") == "json_schema":
            return Reply(status=400, body={"error": {"message": "json_schema not supported"}})
        return Reply(content=json.dumps(GOOD))

    monkeypatch.setattr(fake_llm, "_respond", respond)
    d = draft(provider(fake_llm), q)
    assert d.llm and d.requests == 2
    assert fake_llm.requests[1]["response_format"] == {"type": "json_object"}


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_falls_back_to_the_plain_draft(fake_llm, q, status):
    fake_llm.behave("error", status=status)  # its error body echoes the Authorization header
    d = draft(provider(fake_llm, retries=1), q)
    assert not d.llm and d.requests == 2 and len(fake_llm.requests) == 2
    assert d.warning.startswith(f"HTTP {status}") and "after 2 requests" in d.warning
    assert KEY not in d.warning and "SECRET" not in d.warning
    assert d.rubric == draft_rubric(q.id, q.model_answer, q.question)
    assert "--llm failed" in d.toml(q.question) and KEY not in d.toml(q.question)


def test_unreachable_server_falls_back(q):
    d = draft(provider(None, retries=0, url="http://127.0.0.1:9/v1"), q)  # nothing listens on 9
    assert not d.llm and d.warning.startswith("connection failed")
    assert read_back(d, q) == draft_rubric(q.id, q.model_answer, q.question)


# ----------------------------------------------------------------------------- grounding


def test_hallucinated_concept_is_dropped_and_named(fake_llm, q):
    reply = json.loads(json.dumps(GOOD))
    reply["concepts"].insert(1, HALLUCINATED)
    fake_llm.behave("reply", reply=reply)
    d = draft(provider(fake_llm), q)
    assert d.llm and d.dropped == ["Quantum replication"]
    assert "Quantum replication" not in [c.name for c in d.rubric.concepts]
    assert len(d.rubric.concepts) == 3
    assert any("not in the model answer: Quantum replication" in n for n in d.notes)
    assert "# Note: dropped 1 concept(s) not in the model answer: Quantum replication" in d.toml(q.question)


def test_only_hallucinated_concepts_fall_back(fake_llm, q):
    fake_llm.behave("reply", reply={"concepts": [HALLUCINATED], "misconceptions": []})
    d = draft(provider(fake_llm), q)
    assert not d.llm and "none of the 1 proposed concept(s) is in the model answer" in d.warning
    assert d.rubric == draft_rubric(q.id, q.model_answer, q.question)


def test_parse_draft_is_lenient_where_harmless():
    from grader.llm.client import InvalidReply

    r = parse_draft('Sure!\n{"concepts": [{"name": "A", "terms": "x, y", "weight": "2"}], '
                    '"misconceptions": null, "extra": 1}')
    assert r.concepts[0].terms == ["x", "y"] and r.concepts[0].weight == 2 and r.misconceptions == []
    for bad in ("", "no json", '{"concepts": []}', '{"misconceptions": []}', "[1]"):
        with pytest.raises(InvalidReply):
            parse_draft(bad)


# ----------------------------------------------------------------------------- the CLI, as a process


def _env(url, tmp_path, **extra):
    env = dict(os.environ)
    env.update({"OPENAI_BASE_URL": url, "OPENAI_API_KEY": KEY, "GRADER_LLM_MODEL": "test-model",
                "GRADER_CACHE_DIR": str(tmp_path / "cache"), "GRADER_LLM_BACKOFF": "0.01",
                "GRADER_LLM_RETRIES": "1", "GRADER_LLM_TIMEOUT": "5", "GRADER_LLM_SERVER": "generic",
                "OMP_NUM_THREADS": "1", **extra})
    return env


def _draft_cli(env, *args):
    return subprocess.run(grader_cmd() + ["rubric", "draft", "--question", QID, *args],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)


def _no_key(*texts):
    for t in texts:
        assert KEY not in t and "SECRET-1234" not in t


def test_cli_draft_llm_writes_toml_that_validates(fake_llm, tmp_path):
    reply = json.loads(json.dumps(GOOD))
    reply["concepts"].append(HALLUCINATED)
    fake_llm.behave("reply", reply=reply)
    env = _env(fake_llm.url, tmp_path)
    out = tmp_path / "rubrics" / f"{QID}.toml"
    r = _draft_cli(env, "--llm", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert "note: --llm: dropped 1 concept(s) not in the model answer: Quantum replication" in r.stderr
    text = out.read_text(encoding="utf-8")
    assert "Proposed by the LLM test-model" in text
    rubric = Rubric.model_validate(tomllib.loads(text))
    assert [c.name for c in rubric.concepts] == [c["name"] for c in GOOD["concepts"]]
    # `rubric validate` checks a whole folder against the bank: the bank's rubrics, this one swapped in.
    for f in (ROOT / "rubrics").glob("*.toml"):
        if f.name != out.name:
            shutil.copy(f, out.parent / f.name)
    v = subprocess.run(grader_cmd() + ["rubric", "validate", "--rubrics", str(out.parent)],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert v.returncode == 0, v.stdout + v.stderr
    # A draft lists few misconceptions; the bank's bar for them is a warning, and the only one.
    warnings = [line for line in v.stdout.splitlines() if line.startswith("warning:")]
    assert "ok" in v.stdout and all(f"{out.name}: misconceptions:" in w for w in warnings), v.stdout
    r2 = _draft_cli(env, "--llm")  # to stdout, from the cache
    assert r2.returncode == 0 and len(fake_llm.requests) == 1
    assert Rubric.model_validate(tomllib.loads(r2.stdout)) == rubric
    assert fake_llm.headers[0]["authorization"] == f"Bearer {KEY}"  # sent to the server only
    cache = [f.read_bytes().decode("latin-1") for f in (tmp_path / "cache").rglob("*") if f.is_file()]
    _no_key(r.stdout, r.stderr, r2.stdout, r2.stderr, text, *cache)


def test_cli_draft_llm_server_errors_fall_back_with_one_warning(fake_llm, tmp_path):
    fake_llm.behave("error", status=500)  # its error body echoes the key
    env = _env(fake_llm.url, tmp_path)
    r = _draft_cli(env, "--llm", "--no-cache")
    assert r.returncode == 0, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: --llm: HTTP 500"), r.stderr
    assert "using the plain draft instead" in lines[0] and "Traceback" not in r.stderr
    plain = subprocess.run(grader_cmd() + ["rubric", "draft", "--question", QID], capture_output=True,
                           text=True, cwd=ROOT, env=env, timeout=120)
    fallback = Rubric.model_validate(tomllib.loads(r.stdout))
    assert fallback == Rubric.model_validate(tomllib.loads(plain.stdout))
    _no_key(r.stdout, r.stderr)


def test_cli_draft_llm_unreachable_falls_back(tmp_path):
    env = _env("http://127.0.0.1:9/v1", tmp_path, GRADER_LLM_RETRIES="0")
    r = _draft_cli(env, "--llm")
    assert r.returncode == 0, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: --llm: connection failed"), r.stderr
    Rubric.model_validate(tomllib.loads(r.stdout))
    _no_key(r.stdout, r.stderr)


def test_cli_draft_llm_without_settings_is_one_clear_line(tmp_path):
    env = dict(os.environ)
    for k in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "GRADER_LLM_MODEL"):
        env.pop(k, None)
    env["GRADER_CACHE_DIR"] = str(tmp_path)
    r = subprocess.run(grader_cmd() + ["rubric", "draft", "--question", QID, "--llm"],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr and not r.stdout
    assert len(r.stderr.strip().splitlines()) == 1 and "OPENAI_BASE_URL" in r.stderr
