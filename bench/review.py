"""grader review with 5,000 answers: how fast the ranking page, a question's page and a decision
answer (targets: pages under 300 ms, a decision under 50 ms), measured over loopback against a
real `grader review` server on a real batch run.  Also takes the docs' screenshot.

    python bench/review.py [--answers 5000] [--out bench/results/review.md]
    python bench/review.py --screenshot docs/review.png   # the app on the bundled example

Answers come from tests/hostile/corpus.py (a pool of distinct short answers reused by different
candidates, 8 questions each).  A question's page groups its answers by meaning on first opening
(embedding them): that cold time is reported beside the warm one.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
from bench.common import commit, machine  # noqa: E402
from hostile.corpus import short_answers, write_csv  # noqa: E402

GRADER = [str(Path(sys.executable).parent / "grader")]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


class Response:
    def __init__(self, status_code: int, text: str):
        self.status_code, self.text = status_code, text


class Client:
    """Reads pages (http.client); `timed` measures a request with curl's own clock (%{time_total}).
    Python's clients here waited ~40 ms on many requests (headers and body in separate writes
    against delayed ACKs: httpx even on static files, http.client on POSTs); curl, like a browser,
    does not, so the times are the server's and the loopback's."""

    def __init__(self, port: int, token: str):
        self.headers = {"X-Review-Token": token}
        self.port = port
        fd, self._hdr = tempfile.mkstemp(prefix="review-bench-", suffix=".headers")
        os.write(fd, f"X-Review-Token: {token}\n".encode())
        os.close(fd)

    def _do(self, method: str, path: str, body: bytes | None, headers: dict) -> Response:
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            conn.request(method, path, body=body, headers={**self.headers, **headers})
            r = conn.getresponse()
            return Response(r.status, r.read().decode("utf-8"))
        finally:
            conn.close()

    def timed(self, path: str, json: dict | None = None, headers: dict | None = None) -> float:
        """Milliseconds curl took for one request (a fresh connection; the token from a file, not argv)."""
        import json as _json

        hdr = Path(self._hdr)
        args = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total}", "-H", f"@{hdr}"]
        for k, v in (headers or {}).items():
            args += ["-H", f"{k}: {v}"]
        if json is not None:
            args += ["-H", "Content-Type: application/json", "--data-binary", _json.dumps(json)]
        out = subprocess.run(args + [f"http://127.0.0.1:{self.port}{path}"], capture_output=True, text=True).stdout
        code, secs = out.split()
        if code != "200":
            raise SystemExit(f"{path}: HTTP {code}")
        return float(secs) * 1000

    def get(self, path: str) -> Response:
        return self._do("GET", path, None, {})

    def post(self, path: str, json: dict, headers: dict) -> Response:
        import json as _json

        return self._do("POST", path, _json.dumps(json).encode(), {"Content-Type": "application/json", **headers})


class Server:
    def __init__(self, run: Path, env: dict):
        self.proc = subprocess.Popen(GRADER + ["review", str(run), "--reviewer", "bench"], cwd=ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http"):
            raise SystemExit(f"grader review did not start: {self.proc.stderr.read()}")
        self.base = self.url.split("/?")[0]

    def client(self):
        """A logged-in keep-alive client and the page's CSRF token."""
        token = self.url.split("token=", 1)[1]
        port = int(self.base.rsplit(":", 1)[1])
        for _ in range(200):
            try:
                c = Client(port, token)
                r = c.get("/")
                break
            except OSError:
                time.sleep(0.05)
        return c, re.search(r'name="csrf-token" content="([^"]+)"', r.text).group(1)

    def stop(self):
        self.proc.send_signal(2)
        self.proc.communicate(timeout=30)


def timed(fn, n: int) -> list[float]:
    """n timings (ms) of fn, which makes one request and returns curl's time for it."""
    return [fn() for _ in range(n)]


def p95(xs: list[float]) -> float:
    return sorted(xs)[max(0, int(round(0.95 * len(xs))) - 1)]


def batch(rows, d: Path, env: dict) -> Path:
    inp = write_csv(rows, d / "answers.csv")
    t0 = time.perf_counter()
    r = subprocess.run(GRADER + ["batch", str(inp), "--out", str(d / "run.html"), "--quiet", "--force"], cwd=ROOT,
                       env=env, capture_output=True, text=True)
    if r.returncode not in (0, 3):
        raise SystemExit(r.stderr)
    print(f"batch of {len(rows)} answers: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return d / "run.results.jsonl"


def bench(n_answers: int, out: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "2", "GRADER_THREADS": "2"}
    load = machine(load=True)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        rows = short_answers(n_answers, seed=18, pool=min(1500, n_answers))
        results = batch(rows, d, env)
        t0 = time.perf_counter()
        s = Server(results, env)
        c, csrf = s.client()
        start = (time.perf_counter() - t0) * 1000
        try:
            n_cand = len({r[0] for r in rows})
            figures: list[tuple[str, list[float], float | None]] = []
            cold_rank = timed(lambda: c.timed("/"), 1)[0]
            figures.append(("ranking page (/, 100 of %d candidates a page, totals over all)" % n_cand,
                            timed(lambda: c.timed("/"), 30), 300))
            figures.append(("ranking sorted by percent, filtered to fails, searched",
                            timed(lambda: c.timed("/?sort=percent&desc=true&result=fail&q=cand-0"), 30), 300))
            figures.append(("review queue page (first 200 of the queue)", timed(lambda: c.timed("/queue"), 20), 300))
            figures.append(("candidate page", timed(lambda: c.timed("/candidate/7"), 30), 300))
            per_q = n_answers // len({r[1] for r in rows})
            cold_q = timed(lambda: c.timed("/question/0"), 1)[0]
            cold_q2 = timed(lambda: c.timed("/question/1"), 1)[0]
            figures.append((f"question page, warm (~{per_q} answers in groups)", timed(lambda: c.timed("/question/0"), 20), 300))
            k = iter(range(10**9))
            figures.append(("decision (override one answer's score)",
                            timed(lambda: c.timed(f"/api/answer/{next(k) % n_answers}",
                                                 json={"kind": "score", "score": 5, "note": "bench", "seen": 0},
                                                 headers={"X-CSRF-Token": csrf}), 200), 50))
            page = c.get("/question/0").text
            members = re.search(r'data-members="([^"]+)"', page).group(1)
            pairs = [[int(a) for a in m.split(":")] for m in members.split(",")]
            figures.append((f"group decision ({len(pairs)} answers in one transaction)",
                            timed(lambda: c.timed("/api/group", json={"question": 0, "members": pairs, "score": 6},
                                                 headers={"X-CSRF-Token": csrf}), 10), None))
            figures.append(("ranking page after those decisions", timed(lambda: c.timed("/"), 20), 300))

            def fresh_ranking() -> float:
                c.timed(f"/api/answer/{next(k) % n_answers}", json={"kind": "accept"}, headers={"X-CSRF-Token": csrf})
                return c.timed("/")

            figures.append(("ranking page right after a decision (every total recomputed)", timed(fresh_ranking, 20), 300))
            export = timed(lambda: c.timed("/export/report.html"), 3)
        finally:
            s.stop()
    lines = [
        "# grader review: page and decision times",
        "",
        f"Commit {commit()} · {load} · {time.strftime('%Y-%m-%d')}",
        "",
        f"{n_answers} answers ({n_cand} candidates, 8 questions each) from a real `grader batch`; a real "
        "`grader review` server, timed from a client over loopback (curl, one request at a time, its own %{time_total}), so each time "
        "includes HTTP, the token and CSRF checks and the rendering.  Targets (issue 18): pages under 300 ms, "
        "a decision under 50 ms.  Run with `make bench-review`, never beside the test suite.",
        "",
        "| request | median ms | p95 ms | target ms | met |",
        "|---|---:|---:|---:|---|",
    ]
    for name, xs, target in figures:
        med = statistics.median(xs)
        met = "" if target is None else ("yes" if p95(xs) < target else ("median only" if med < target else "**no**"))
        lines.append(f"| {name} | {med:.1f} | {p95(xs):.1f} | {target or '–'} | {met} |")
    lines += [
        "",
        "Once, cold:",
        "",
        f"- server start to the first page: {start:.0f} ms (the run is loaded once and kept in memory)",
        f"- first ranking page: {cold_rank:.0f} ms",
        f"- first question page: {cold_q:.0f} ms: loads the embedding model and embeds the question's ~{per_q} answers "
        f"to group them; the next question's first page {cold_q2:.0f} ms (model loaded, its answers embedded); "
        "answers grading already embedded come from the on-disk cache",
        f"- export of the report with the human scores (/export/report.html): median {statistics.median(export):.0f} ms",
        "",
        "Notes: the ranking is kept until the next decision, so the first table row is a cached ranking; the "
        "row after it recomputes every candidate's total over all answers.  The queue is kept the same way.  Timed first with Python's HTTP "
        "clients, every request took 44-56 ms, the server's share being 2-8 ms: httpx (even for a static file) and "
        "http.client (on a POST) wait on a delayed ACK; curl, like a browser, does not, so the table uses curl.  "
        "The load average is that of a machine shared with other sessions.",
        "",
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


def screenshot(path: Path) -> None:
    """The candidate page of the bundled example, after one override, as the docs show it."""
    from playwright.sync_api import sync_playwright

    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        r = subprocess.run(GRADER + ["batch", "examples/candidates.csv", "--out", str(d / "example.html"), "--quiet"],
                           cwd=ROOT, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(r.stderr)
        s = Server(d, env)
        c, csrf = s.client()
        try:
            page = c.get("/").text
            felix = re.search(r'<a href="/candidate/(\d+)">Felix Moreau</a>', page).group(1)
            with sync_playwright() as p:
                b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
                pg = b.new_page(viewport={"width": 1200, "height": 1080})
                pg.goto(s.url)
                pg.goto(f"{s.base}/candidate/{felix}")
                sec = pg.locator("section.answer", has_text="flask-django-fastapi")
                sec.scroll_into_view_if_needed()
                order = pg.locator("section.answer h2 a").all_inner_texts()
                for _ in range(order.index("flask-django-fastapi")):
                    pg.keyboard.press("j")
                sec.locator(".note").fill("one line of names, no explanation")
                pg.keyboard.press("Escape")
                pg.keyboard.press("4")
                pg.keyboard.press("Enter")
                pg.locator("#status").wait_for()
                anchor = sec.get_attribute("id")
                pg.goto(f"{s.base}/queue")
                pg.goto(f"{s.base}/candidate/{felix}#{anchor}")  # the totals with the new score
                pg.evaluate("window.scrollTo(0, 0)")
                pg.screenshot(path=str(path))
                b.close()
        finally:
            s.stop()
    print(f"wrote {path}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--answers", type=int, default=5000)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "review.md")
    ap.add_argument("--screenshot", type=Path, default=None)
    a = ap.parse_args()
    if a.screenshot:
        screenshot(a.screenshot)
    else:
        bench(a.answers, a.out)


if __name__ == "__main__":
    main()
