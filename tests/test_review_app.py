"""The review app as a real server on loopback (`grader review` in a process of its own): the
token, CSRF, Origin and Host checks, path tricks, JSON without HTML, two reviewers on one run,
SIGKILL during a burst of decisions, Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from conftest import ROOT, grader_cmd
from test_review import fresh_copy, shared_run


class Server:
    """`grader review RUN` running; `url` is its first line of standard output."""

    def __init__(self, run: Path, *args: str):
        self.proc = subprocess.Popen(grader_cmd() + ["review", str(run), *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, cwd=ROOT)
        self.url = self.proc.stdout.readline().strip()
        m = re.fullmatch(r"(http://127\.0\.0\.1:(\d+))/\?token=([A-Za-z0-9_-]{20,})", self.url)
        assert m, self.url
        self.base, self.port, self.token = m.group(1), int(m.group(2)), m.group(3)
        for _ in range(100):
            try:
                httpx.get(self.base + "/", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.05)

    def client(self) -> tuple[httpx.Client, str]:
        """A logged-in client (cookie from the token URL) and the page's CSRF token."""
        c = httpx.Client(base_url=self.base, timeout=30)
        r = c.get(self.url, follow_redirects=True)
        assert r.status_code == 200
        return c, re.search(r'name="csrf-token" content="([^"]+)"', r.text).group(1)

    def stop(self, sig=signal.SIGINT) -> tuple[int, str, str]:
        self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=30)
        return self.proc.returncode, out, err


def raw_get(port: int, path: str, token: str) -> tuple[int, str]:
    """GET with the path sent exactly as written (httpx would normalise '..')."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.putrequest("GET", path, skip_accept_encoding=True)
    conn.putheader("Cookie", f"grader_review={token}")
    conn.endheaders()
    r = conn.getresponse()
    body = r.read().decode("utf-8", "replace")
    conn.close()
    return r.status, body


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return shared_run(tmp_path_factory, "review-app").parent


@pytest.fixture(scope="module")
def server(run_dir):
    s = Server(run_dir, "--reviewer", "alice")
    yield s
    if s.proc.poll() is None:
        s.stop()


PROTECTED = ["/", "/queue", "/questions", "/candidate/0", "/question/0", "/static/review.js", "/static/review.css",
             "/export/report.html", "/export/graded.jsonl", "/api/progress", "/nonexistent"]


def test_every_request_without_the_token_is_refused(server):
    for path in PROTECTED:
        for kw in ({}, {"headers": {"X-Review-Token": "wrong"}}, {"cookies": {"grader_review": server.token[:-1] + "x"}},
                   {"params": {"token": server.token.upper()}}):
            r = httpx.get(server.base + path, **kw)
            assert r.status_code == 401, (path, kw, r.status_code)
            assert server.token not in r.text
    r = httpx.post(server.base + "/api/answer/0", json={"kind": "accept"})
    assert r.status_code == 401
    # The header works for scripts; the URL's token becomes a cookie and leaves the address bar.
    assert httpx.get(server.base + "/api/progress", headers={"X-Review-Token": server.token}).status_code == 200
    r = httpx.get(server.url + "&sort=candidate")
    assert r.status_code == 303 and r.headers["location"] == "/?sort=candidate"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    page = httpx.get(server.base + "/", cookies={"grader_review": server.token})
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    assert server.token not in page.text


def test_writes_need_csrf_and_same_origin(server):
    c, csrf = server.client()
    body = {"kind": "accept", "seen": 0}
    assert c.post("/api/answer/0", json=body).status_code == 403
    assert c.post("/api/answer/0", json=body, headers={"X-CSRF-Token": "nope"}).status_code == 403
    r = c.post("/api/answer/0", json=body, headers={"X-CSRF-Token": csrf, "Origin": "http://evil.example"})
    assert r.status_code == 403 and r.headers["content-type"].startswith("application/json")
    r = c.post("/api/answer/0", json=body, headers={"X-CSRF-Token": csrf, "Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    r = c.post("/api/answer/0", json=body, headers={"X-CSRF-Token": csrf, "Origin": server.base})
    assert r.status_code == 200 and r.json()["decisions"][0]["kind"] == "accept"
    # A form post from another site (no JSON, no CSRF header) is refused too.
    r = c.post("/api/verdict/0", data={"verdict": "advance"})
    assert r.status_code == 403


def test_host_header_and_path_tricks_are_refused(server):
    c, csrf = server.client()
    assert c.get("/", headers={"Host": "evil.example"}).status_code == 400  # DNS rebinding
    assert c.get("/", headers={"Host": f"localhost:{server.port}"}).status_code == 200
    secret = (ROOT / "pyproject.toml").read_text("utf-8")[:40]
    for path in ["/static/../pyproject.toml", "/static/..%2f..%2fpyproject.toml", "/static/%2e%2e/%2e%2e/pyproject.toml",
                 "/static/..%5c..%5cpyproject.toml", "/static/review.js%00.css", "/static//etc/passwd",
                 "/static/%2fetc%2fpasswd", "/candidate/..%2f..%2fetc%2fpasswd", "/candidate/-1", "/candidate/99999",
                 "/question/1e9", "/export/..%2f..%2fpyproject.toml", "/static/"]:
        status, text = raw_get(server.port, path, server.token)
        assert status in (400, 404, 405, 422), (path, status)
        assert secret not in text and "root:" not in text
    # The JSON API sends no HTML: bad input is JSON, a hostile note comes back as a JSON string.
    r = c.post("/api/answer/0", json={"kind": "score", "score": 99}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/json")
    r = c.post("/api/answer/0", json={"kind": "nope"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/json")
    note = "<script>alert(1)</script>"
    r = c.post("/api/answer/1", json={"kind": "score", "score": 4, "note": note}, headers={"X-CSRF-Token": csrf})
    assert r.headers["content-type"].startswith("application/json") and r.json()["decisions"][0]["note"] == note
    page = c.get("/candidate/0").text
    assert note not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_two_reviewers_lose_nothing_and_see_the_conflict(server, run_dir):
    bob = Server(run_dir, "--reviewer", "bob")
    try:
        ca, csrf_a = server.client()
        cb, csrf_b = bob.client()
        # Both opened the answer before either decided (seen 0 on both pages).
        seen = int(re.search(r'id="a5" data-answer="5" data-seen="(\d+)"', ca.get("/candidate/0").text).group(1))
        ra = ca.post("/api/answer/5", json={"kind": "score", "score": 2, "note": "alice", "seen": seen},
                     headers={"X-CSRF-Token": csrf_a}).json()["decisions"][0]
        rb = cb.post("/api/answer/5", json={"kind": "score", "score": 8, "note": "bob", "seen": seen},
                     headers={"X-CSRF-Token": csrf_b}).json()["decisions"][0]
        assert rb["conflict"] == {"id": ra["id"], "reviewer": "alice", "at": ra["at"], "new_score": 2.0, "verdict": None}
        page = ca.get("/candidate/0").text  # Alice's server sees Bob's later decision, and the conflict
        sec = page.split('id="a5"')[1].split("</section>")[0]
        assert "✎ 8" in sec and "conflict: made without seeing #%d" % ra["id"] in sec
        assert "conflict" in ca.get("/").text
    finally:
        code, out, err = bob.stop()
    db = sqlite3.connect(run_dir / "report.results.jsonl.review.sqlite")
    rows = db.execute("SELECT reviewer, new_score, conflict_with FROM decisions WHERE note IN ('alice', 'bob') ORDER BY id").fetchall()
    assert rows == [("alice", 2.0, None), ("bob", 8.0, ra["id"])]


def test_ctrl_c_stops_cleanly_and_the_token_is_never_logged(run_dir):
    s = Server(run_dir, "--reviewer", "dan")
    c, csrf = s.client()
    c.get("/queue"), c.get("/?q=x"), c.get("/nonexistent")
    code, out, err = s.stop(signal.SIGINT)
    assert code == 0 and "stopped" in err and "Traceback" not in err
    assert s.token not in err and out.strip() == ""  # the URL was the only line, read at start


def test_sigkill_during_a_burst_of_decisions(tmp_path, run_dir):
    res = fresh_copy(run_dir / "report.results.jsonl", tmp_path)
    s = Server(res, "--reviewer", "eve")
    c, csrf = s.client()
    done: list[int] = []

    def burst():
        k = 0
        while True:
            try:
                r = c.post(f"/api/answer/{k % 40}", json={"kind": "score", "score": k % 10, "note": f"n{k}", "seen": 0},
                           headers={"X-CSRF-Token": csrf})
            except httpx.TransportError:
                return
            if r.status_code == 200:
                done.append(r.json()["decisions"][0]["id"])
            k += 1

    t = threading.Thread(target=burst)
    t.start()
    time.sleep(1.5)
    os.kill(s.proc.pid, signal.SIGKILL)
    s.proc.wait()
    t.join(timeout=30)
    db = sqlite3.connect(tmp_path / "report.results.jsonl.review.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    ids = [r[0] for r in db.execute("SELECT id FROM decisions ORDER BY id")]
    assert done and set(done) <= set(ids)  # every acknowledged decision is there
    assert db.execute("SELECT count(*) FROM decisions WHERE new_score IS NULL OR note NOT LIKE 'n%'").fetchone()[0] == 0
    db.close()
    again = Server(res, "--reviewer", "eve")  # reopens and carries on
    try:
        c2, _ = again.client()
        assert c2.get("/api/progress").json()["reviewed"] == min(40, len(ids))
    finally:
        again.stop()
