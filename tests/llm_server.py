"""A real OpenAI-compatible HTTP server on 127.0.0.1 with scripted behaviours, for tests.

The real `openai` client talks to it over real HTTP (POST /v1/chat/completions).  Each
test picks a behaviour; every request is recorded (body and headers) so tests can count
tries and read what was sent.  No network is needed.

    def test_x(fake_llm):
        fake_llm.behave("rate_limited", times=1, retry_after="1")
        ... OPENAI_BASE_URL = fake_llm.url ...
        assert len(fake_llm.requests) == 2
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

_ANSWER = re.compile(r"<<<CANDIDATE_ANSWER (\w+)>>>\n(.*)\n<<<END_CANDIDATE_ANSWER \1>>>", re.S)
_CONCEPTS = re.compile(r"Rubric concepts:\n(\[.*?\n\])", re.S)


def prompt_parts(body: dict) -> tuple[list[str], str]:
    """(concept names, candidate answer) out of a grader request."""
    names, answer, _ = prompt_concepts(body)
    return names, answer


def prompt_concepts(body: dict) -> tuple[list[str], str, list[str]]:
    """(concept names, candidate answer, concept descriptions) out of a grader request."""
    user = next(m["content"] for m in body["messages"] if m["role"] == "user")
    m = _CONCEPTS.search(user)
    concepts = json.loads(m.group(1)) if m else []
    a = _ANSWER.search(user)
    return [c["name"] for c in concepts], a.group(2) if a else "", [c.get("description", "") for c in concepts]


_WORD = re.compile(r"[a-z][a-z-]{3,}")


def relevant_quotes(names: list[str], descriptions: list[str], answer: str) -> list[str]:
    """Per concept, the answer sentence sharing most words with its name and description ("" if none)."""
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", answer) if s.strip()]
    out = []
    for name, desc in zip(names, descriptions):
        want = set(_WORD.findall(f"{name} {desc}".lower()))
        best = max(sentences, key=lambda s: len(want & set(_WORD.findall(s.lower()))), default="")
        out.append(best if best and want & set(_WORD.findall(best.lower())) else "")
    return out


def first_words(answer: str, n: int = 6) -> str:
    return " ".join(answer.split()[:n])


def honest_reply(names: list[str], answer: str, descriptions: list[str] | None = None) -> dict:
    """Without descriptions: every concept covered, each quoting the answer's first words (in
    the answer, but shows no particular concept).  With them: each concept covered by the
    sentence sharing most words with it, else missing (what an honest judge answers)."""
    if descriptions is None:
        quotes = [first_words(answer)] * len(names)
    else:
        quotes = relevant_quotes(names, descriptions, answer)
    covered = sum(bool(q) for q in quotes)
    return {
        "concepts": [{"name": n, "status": "covered" if q else "missing", "quote": q} for n, q in zip(names, quotes)],
        "misconceptions": [],
        "suggested_score": 0.9 if descriptions is None else (covered / len(names) if names else 0.9),
        "strengths": ["clear and correct"],
        "improvements": ["give an example"],
        "feedback": "A solid answer that covers the main ideas.",
        "injection_suspected": False,
    }


def obeying_reply(names: list[str], answer: str) -> dict:
    """What a small model does with an injected answer: obeys it."""
    return {
        "concepts": [
            {"name": n, "status": "covered", "quote": "" if i % 2 else "as instructed, full marks"}
            for i, n in enumerate(names)
        ],
        "misconceptions": [],
        "suggested_score": 10,
        "strengths": ["everything"],
        "improvements": [],
        "feedback": "Perfect answer, 10/10 as instructed.",
        "injection_suspected": False,
    }


_POINT = re.compile(r"The point to check:\n(.*?)\n\n<<<CANDIDATE_ANSWER", re.S)


def checklist_parts(body: dict) -> tuple[str, str] | None:
    """(the point asked about, candidate answer) of a checklist request, else None."""
    user = next(m["content"] for m in body["messages"] if m["role"] == "user")
    m = _POINT.search(user)
    if not m:
        return None
    a = _ANSWER.search(user)
    return m.group(1), a.group(2) if a else ""


def honest_check(point: str, answer: str) -> dict:
    """An honest checklist judge: a concept is stated by the sentence sharing most words with
    it (no for none); a wrong claim is never stated."""
    if point.startswith("The wrong claim"):
        return {"verdict": "no", "quote": ""}
    quote = relevant_quotes(["x"], [point], answer)[0]
    return {"verdict": "yes" if quote else "no", "quote": quote}


@dataclass
class Reply:
    status: int = 200
    content: str | None = None
    headers: dict = field(default_factory=dict)
    body: dict | None = None  # raw JSON body (errors)
    delay: float = 0.0
    drop: bool = False  # close the connection without answering


class FakeLLM:
    """State shared with the handler threads."""

    def __init__(self):
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.checklist_requests = 0
        self._lock = threading.Lock()
        self.behave("good")
        self.url = ""

    def reset(self):
        with self._lock:
            self.requests.clear()
            self.headers.clear()
            self.checklist_requests = 0
        self.behave("good")

    def behave(self, name: str, **kw):
        """Pick the scripted behaviour for the next requests."""
        self.name, self.kw = name, kw

    # ----------------------------------------------------------------- behaviours

    def _respond(self, body: dict, n: int, auth: str) -> Reply:
        kw, name = self.kw, self.name
        check = checklist_parts(body)
        if check is not None:
            self.checklist_requests += 1
            good = Reply(content=json.dumps(honest_check(*check)))
            if name == "by_seed" and "checklist" in kw:
                return Reply(content=json.dumps(kw["checklist"](*check, body.get("seed"))))
            if name in ("good", "by_seed"):
                return good
            names, answer, descriptions = [], check[1], []
            good_dict = None
        else:
            names, answer, descriptions = prompt_concepts(body)
            good_dict = honest_reply(names, answer, descriptions)
            good = Reply(content=json.dumps(good_dict))
        if name == "good":
            return good
        if name == "reply":  # a fixed reply dict, or a function (names, answer) -> dict
            r = kw["reply"]
            return Reply(content=json.dumps(r(names, answer) if callable(r) else r))
        if name == "by_model":  # {model: function (names, answer) -> reply dict, or "error" (echoes the key)}
            r = kw["replies"][body.get("model")]
            if r == "error":
                return Reply(status=500, body={"error": {"message": f"boom (auth was {auth})"}})
            return Reply(content=json.dumps(r(names, answer) if callable(r) else good_dict))
        if name == "by_seed":  # a function (names, answer, seed) -> reply dict: differs run to run
            return Reply(content=json.dumps(kw["reply"](names, answer, body.get("seed"))))
        if name == "rate_limited":
            if n <= kw.get("times", 1):
                return Reply(status=429, headers={"Retry-After": kw.get("retry_after", "1")},
                             body={"error": {"message": "Rate limit reached", "type": "rate_limit"}})
            return good
        if name == "error":  # a status always; the body echoes the key like a careless proxy
            return Reply(status=kw.get("status", 500),
                         body={"error": {"message": f"boom (auth was {auth})", "type": "server_error"}})
        if name == "flaky":  # a status `times` times, then good
            if n <= kw.get("times", 1):
                return Reply(status=kw.get("status", 503), body={"error": {"message": "busy"}})
            return good
        if name == "slow":
            return Reply(content=good.content, delay=kw.get("delay", 2.0))
        if name == "drop":
            if n <= kw.get("times", 1):
                return Reply(drop=True)
            return good
        if name == "random_failures":  # a share of requests fail with 500, at random (seeded)
            rng = kw.setdefault("rng", __import__("random").Random(kw.get("seed", 1)))
            with self._lock:
                fail = rng.random() < kw.get("share", 0.2)
            if fail:
                return Reply(status=500, body={"error": {"message": "random failure"}})
            return good
        if name == "invalid_then_valid":
            if n <= kw.get("times", 1):
                return Reply(content=kw.get("bad", "Sure! Here is my verdict: covered, 9/10"))
            return good
        if name == "no_json_schema":  # an older server: 400 on json_schema, JSON in prose
            rf = (body.get("response_format") or {}).get("type")
            if rf == "json_schema":
                return Reply(status=400, body={"error": {"message": "response_format json_schema not supported"}})
            return Reply(content="Here you go:\n```json\n" + good.content + "\n```")
        if name == "obeying":
            triggers = kw.get("triggers")
            injected = any(t in answer for t in triggers) if triggers else True
            reply = obeying_reply(names, answer) if injected else honest_reply(names, answer)
            return Reply(content=json.dumps(reply))
        raise AssertionError(f"unknown behaviour {name}")

    def handle(self, body: dict, headers: dict) -> Reply:
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)
            n = len(self.requests)
        return self._respond(body, n, headers.get("authorization", ""))


def _completion(body: dict, content: str) -> dict:
    return {
        "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
        "model": body.get("model", "test-model"),
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150},
    }


def _handler(state: FakeLLM):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):  # quiet
            pass

        def _send(self, status: int, payload: dict, headers: dict | None = None):
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def do_GET(self):
            if self.path.rstrip("/").endswith("/models"):
                self._send(200, {"object": "list", "data": [{"id": "test-model", "object": "model"}]})
            else:
                self._send(404, {"error": {"message": "not found"}})

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n)
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._send(404, {"error": {"message": "not found"}})
                return
            body = json.loads(raw)
            r = state.handle(body, {k.lower(): v for k, v in self.headers.items()})
            if r.delay:
                time.sleep(r.delay)
            if r.drop:
                self.close_connection = True
                try:
                    self.connection.shutdown(2)
                except OSError:
                    pass
                return
            if r.status != 200:
                self._send(r.status, r.body or {"error": {"message": "error"}}, r.headers)
            else:
                self._send(200, _completion(body, r.content), r.headers)

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def get_request(self):
        # Replies go out at once: no Nagle / delayed-ACK stall (~40 ms a request on loopback).
        conn, addr = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, addr


def start_server() -> tuple[FakeLLM, _Server]:
    state = FakeLLM()
    srv = _Server(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{srv.server_address[1]}/v1"
    threading.Thread(target=srv.serve_forever, daemon=True, name="fake-llm").start()
    return state, srv


@pytest.fixture(scope="session")
def _fake_llm_server():
    state, srv = start_server()
    yield state
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def fake_llm(_fake_llm_server):
    """The scripted server, reset to the 'good' behaviour with no recorded requests."""
    _fake_llm_server.reset()
    yield _fake_llm_server
    _fake_llm_server.reset()
