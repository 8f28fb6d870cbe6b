"""`grader batch` killed with SIGKILL at random moments, resumed each time: every row ends with
exactly one result, the results file equals an uninterrupted run's byte for byte, and no
output is ever seen half-written.
"""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import grader_cmd
from hostile.corpus import short_answers, write_csv

ROWS = 200          # 25 candidates x 8 questions, drawn from the bank's answers with variations
CHUNK = 2           # rows per journal write, so that kills land between and inside chunks
MIN_KILLS = 10
SEED = 20261125


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except FileNotFoundError:
        return 0


def _check_outputs_whole(outs: dict[str, Path], n_rows: int) -> None:
    # n_rows: every candidate x every question (a skipped question is a 'no answer' row).
    """Each output is absent or complete: never a torn file under its real name."""
    if outs["html"].exists():
        assert outs["html"].read_text("utf-8").rstrip().endswith("</html>")
    if outs["md"].exists():
        assert "## Candidates" in outs["md"].read_text("utf-8")
    if outs["jsonl"].exists():
        lines = outs["jsonl"].read_text("utf-8").splitlines()
        assert len(lines) == n_rows and all(json.loads(x) for x in lines)
    if outs["csv"].exists():
        with open(outs["csv"], encoding="utf-8", newline="") as fh:
            assert len(list(csv.reader(fh))) == n_rows + 1


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("crash")
    rows = short_answers(ROWS, seed=SEED)
    write_csv(rows, d / "answers.csv")
    return d, rows


@pytest.fixture(scope="module")
def reference(corpus, grader_, bank):
    """An uninterrupted run of the same code path, with its own empty embedding cache."""
    from grader.batch import plan_batch, run_batch
    from grader.embedding import CachedEmbedder
    from grader.batch.ingest import open_source
    from grader.scoring import Grader

    d, _ = corpus
    inner = grader_.embedder.inner if hasattr(grader_.embedder, "inner") else grader_.embedder
    g = Grader(CachedEmbedder(inner, d / "ref-cache" / "embeddings.sqlite"), grader_.mix)
    src = open_source(str(d / "answers.csv"))
    try:
        plan = plan_batch(src, bank, skip_invalid=False)
        summary = run_batch(src, bank, g, plan, d / "reference.jsonl")  # chunking does not change the bytes
    finally:
        src.close()
    assert summary.graded_now == ROWS and not summary.failed
    return d / "reference.jsonl"


def _kill(proc: subprocess.Popen) -> bool:
    """SIGKILL unless it already exited; True when it was killed."""
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return True


def test_sigkill_at_random_moments_then_resume(corpus, reference, tmp_path):
    d, rows = corpus
    rng = random.Random(SEED)
    results = tmp_path / "answers.results.jsonl"
    outs = {k: tmp_path / f"report.{k}" for k in ("html", "md", "jsonl", "csv")}
    # The runs start from a copy of the reference run's embedding cache: the model is never
    # loaded, so each of the many restarts costs a second rather than the model's load time,
    # and the comparison checks the journal and resume logic.  (With an empty cache of their
    # own, the runs' bytes were equal too: cosines are rounded so batch composition cannot
    # change a digit, but the test took minutes.)
    shutil.copytree(d / "ref-cache", tmp_path / "cache")
    env = {**os.environ, "GRADER_CACHE_DIR": str(tmp_path / "cache")}
    base = grader_cmd() + ["batch", str(d / "answers.csv"), "--results", str(results), "--chunk-size", str(CHUNK),
                           "--quiet"]
    for p in outs.values():
        base += ["--out", str(p)]
    n_out = len({c for c, _, _ in rows}) * len({q for _, q, _ in rows})
    log: list[str] = []
    started = time.monotonic()

    def cmd():
        return base + (["--resume"] if results.exists() else [])

    def graded() -> int:
        return sum(1 for _ in open(results, "rb")) if results.exists() else 0

    # Phase 1: kills while grading (after the run has appended something) and at start-up.
    grading_kills = startup_kills = 0
    for cycle in range(40):
        if graded() >= ROWS:
            break
        before = _size(results)
        proc = subprocess.Popen(cmd(), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if cycle % 5 == 4:
            time.sleep(rng.uniform(0.05, 1.0))  # start-up, journal reading, validation
            killed = _kill(proc)
            startup_kills += killed
        else:
            t0 = time.monotonic()
            while proc.poll() is None and _size(results) == before and time.monotonic() - t0 < 120:
                time.sleep(0.005)
            # Short: with the vectors cached a quiet machine grades a row in about a
            # millisecond, and 0.15 s let 4 kills finish the whole file.
            time.sleep(rng.uniform(0.0, 0.025))
            killed = _kill(proc)
            grading_kills += killed
        log.append(f"{time.monotonic() - started:5.1f}s cycle {cycle}: killed={killed} graded={graded()}")
        if not killed:
            assert proc.returncode == 0, proc.stderr.read().decode()
        _check_outputs_whole(outs, n_out)

    # Phase 2: everything is graded; kills while the run builds and writes the reports, at
    # moments spread over the time a whole run takes (the writing comes last).
    t0 = time.monotonic()
    whole = subprocess.run(base + ["--resume"], env=env, capture_output=True, timeout=300)
    assert whole.returncode == 0, whole.stderr.decode()
    t_whole = time.monotonic() - t0
    report_kills = 0
    for cycle in range(5):
        proc = subprocess.Popen(base + ["--resume"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.5, 0.97) * t_whole)
        killed = _kill(proc)
        report_kills += killed
        temps = [p.name for p in tmp_path.glob(".*.tmp")]
        log.append(f"{time.monotonic() - started:5.1f}s reports {cycle}: killed={killed} temps={temps}")
        if not killed:
            assert proc.returncode == 0, proc.stderr.read().decode()
        _check_outputs_whole(outs, n_out)

    # A last, uninterrupted run.
    final = subprocess.run(base + ["--resume"], env=env, capture_output=True, timeout=300)
    assert final.returncode == 0, final.stderr.decode()
    kills = grading_kills + startup_kills + report_kills
    summary = (f"{kills} kills (grading {grading_kills}, start-up {startup_kills}, reports {report_kills}) in "
               f"{time.monotonic() - started:.0f} s\n" + "\n".join(log))
    print("\n" + summary)
    assert kills >= MIN_KILLS and grading_kills >= 6, summary

    # Every input row has exactly one result, in input order...
    recs = [json.loads(x) for x in results.read_text("utf-8").splitlines()]
    keys = [(r["candidate"], r["question_id"]) for r in recs]
    assert len(keys) == len(set(keys)) == ROWS
    assert keys == [(c, q) for c, q, _ in rows]
    # ...with the scores of the uninterrupted run, byte for byte.
    ref = reference.read_bytes()
    if results.read_bytes() != ref:
        ref_recs = [json.loads(x) for x in ref.decode().splitlines()]
        diffs = [(a["candidate"], a["question_id"], a["score"], b["score"]) for a, b in zip(recs, ref_recs) if a != b]
        pytest.fail(f"{len(diffs)} record(s) differ from the uninterrupted run: {diffs[:5]}")
    # The reports are whole, and no temporary file of a killed write is left behind.
    _check_outputs_whole(outs, n_out)
    assert all(p.exists() for p in outs.values())
    assert not list(tmp_path.glob(".*.tmp")), list(tmp_path.glob(".*.tmp"))


def test_stale_temporary_outputs_are_cleaned(tmp_path):
    """A kill inside an atomic write leaves `.NAME.*.tmp`; the next write of NAME removes it."""
    from grader.reports.outputs import _remove_stale_temps

    out = tmp_path / "r.html"
    stale = [tmp_path / ".r.html.abc123.tmp", tmp_path / ".r.html.x.tmp"]
    keep = [tmp_path / ".other.html.abc.tmp", tmp_path / "r.html.tmp", tmp_path / ".r.htmlx.1.tmp"]
    for p in stale + keep:
        p.write_text("partial")
    _remove_stale_temps(out)
    assert not any(p.exists() for p in stale) and all(p.exists() for p in keep)
