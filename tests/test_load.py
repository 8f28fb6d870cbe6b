"""A scaled-down load run (bench/load.py has the 10k/100k figures): thousands of answers, many
of them shared between candidates, graded once each, reports of bounded size, bounded memory.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess

from conftest import ROOT, grader_cmd
from hostile.corpus import short_answers, write_csv

ROWS = 3000
POOL = 240           # distinct texts: answers repeat across candidates, as shared work does
MAX_RSS_MB = 2000    # torch + MiniLM alone take ~600 MB; generous, but catches O(rows^2) growth


def test_thousands_of_answers_each_graded_once(tmp_path):
    rows = short_answers(ROWS, seed=5, pool=POOL)
    inp = write_csv(rows, tmp_path / "load.csv")
    results = tmp_path / "load.results.jsonl"
    outs = [tmp_path / "r.csv", tmp_path / "r.md", tmp_path / "r.html"]
    cmd = grader_cmd() + ["batch", str(inp), "--results", str(results), "--quiet"]
    for o in outs:
        cmd += ["--out", str(o)]
    with open(tmp_path / "stderr", "wb") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
        # Reaped with wait4, which gives this child's own peak RSS (KiB on Linux).
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, (tmp_path / "stderr").read_text()[-2000:]
    peak_mb = usage.ru_maxrss / 1024
    print(f"\n{ROWS} answers: peak RSS {peak_mb:.0f} MB")
    assert peak_mb < MAX_RSS_MB

    recs = [json.loads(x) for x in results.read_text("utf-8").splitlines()]
    keys = [(r["candidate"], r["question_id"]) for r in recs]
    assert len(keys) == len(set(keys)) == ROWS
    assert keys == [(c, q) for c, q, _ in rows]
    assert all(0 <= r["score"] <= r["max_score"] for r in recs)
    # Same text, same score, whoever wrote it.
    by_text: dict[tuple[str, str], float] = {}
    for (c, q, a), r in zip(rows, recs):
        assert by_text.setdefault((q, a), r["score"]) == r["score"]

    with open(outs[0], encoding="utf-8", newline="") as fh:
        assert len(list(csv.reader(fh))) == 1 + len({c for c, _, _ in rows}) * 24
    md = outs[1].read_text("utf-8")
    # Thousands of identical answers are tens of thousands of pairs: the closest are listed, the rest counted.
    pairs_section = md.split("## Near-identical answers", 1)[1].split("\n## ", 1)[0]
    listed = sum(1 for line in pairs_section.splitlines() if line.startswith("| ") and "Candidate" not in line)
    assert 0 < listed <= 1000
    assert "pairs found; the 1000 closest are listed" in pairs_section  # ~13,000 pairs here
    assert outs[2].stat().st_size < 50 * 1024 * 1024


def _brute_pairs(answers, threshold):
    """Every pair the README describes, the slow way: (question, a, b) -> (similarity, exact)."""
    import numpy as np

    from grader.batch.copies import MIN_WORDS
    from grader.text import tokens

    out = {}
    for i, (q1, c1, t1, v1) in enumerate(answers):
        for q2, c2, t2, v2 in answers[i + 1:]:
            if q1 != q2 or c1 == c2 or len(tokens(t1)) < MIN_WORDS or len(tokens(t2)) < MIN_WORDS:
                continue
            exact = tokens(t1) == tokens(t2)
            # As the detector keeps them: float16 vectors, float32 products.
            sim = float(v1.astype(np.float16).astype(np.float32) @ v2.astype(np.float16).astype(np.float32))
            if exact or sim >= threshold - 1e-6:
                out[(q1, *sorted((c1, c2)))] = (1.0 if exact else round(min(sim, 1.0), 3), exact)
    return out


def test_copy_pairs_are_counted_without_materialising_them():
    """Copy detection lists the closest pairs and counts the rest without a Python object (or a
    set entry) per pair: 4,000 candidates pasting one answer are 8 million pairs."""
    import numpy as np

    from grader.batch.copies import CopyDetector

    rng = np.random.default_rng(3)
    base = rng.normal(size=(5, 384)).astype(np.float32)
    texts = ["alpha beta gamma delta epsilon zeta", "one two three four five six seven", "red green blue cyan magenta yellow"]
    answers = []
    for q in ("q1", "q2"):
        for c in range(90):
            k = int(rng.integers(0, 5))
            v = base[k] + rng.normal(scale=float(rng.choice([0.0, 0.04, 0.1, 0.3])), size=384).astype(np.float32)
            answers.append((q, f"c{c}", texts[k % 3] + (" more" if rng.random() < 0.3 else ""), v / np.linalg.norm(v)))
    want = _brute_pairs(answers, 0.95)
    for cap in (10_000, 25):
        det = CopyDetector(max_pairs=cap)
        for q, c, t, v in answers:
            det.add(q, c, t, v)
        got = det.pairs()
        assert det.total == len(want) > 25
        if cap > len(want):
            assert {(p.question_id, p.candidate_a, p.candidate_b): (p.similarity, p.exact) for p in got} == want
        else:
            assert len(got) == cap
            assert sorted(p.similarity for p in got) == sorted(s for s, _ in want.values())[-cap:]

    det = CopyDetector()
    v = base[0] / np.linalg.norm(base[0])
    for c in range(4000):
        det.add("q", f"c{c}", texts[0], v)
    import threading

    done = []
    th = threading.Thread(target=lambda: done.append(det.pairs()), daemon=True)
    th.start()
    th.join(120)
    assert done, "copy detection did not finish in 120 s"
    assert det.total == 4000 * 3999 // 2 and len(done[0]) == 1000
