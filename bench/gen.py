"""Generate a realistic answers file from the bank (fixed seed): python bench/gen.py N OUT.csv [--pool K]."""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.text import split_sentences  # noqa: E402

FILLERS = ["I think", "Basically,", "In my experience,", "As far as I know,", "To be honest,", "Well,"]


def base_answers() -> dict[str, list[str]]:
    """Per question: its model answer, the test paraphrase and the example candidates' answers."""
    qs = json.loads((ROOT / "questions.json").read_text(encoding="utf-8"))
    para = json.loads((ROOT / "tests/data/paraphrases.json").read_text(encoding="utf-8"))
    out = {q["id"]: [q["model_answer"], para[q["id"]]] for q in qs}
    with open(ROOT / "examples/candidates.csv", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            out[row["question_id"]].append(row["answer"])
    return out


def typo(word: str, rng: random.Random) -> str:
    if len(word) < 6:
        return word
    i = rng.randrange(1, len(word) - 1)
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def vary(text: str, rng: random.Random) -> str:
    """A different answer of realistic length: a subset of sentences, reordered, some typos."""
    sents = split_sentences(text)
    keep = max(1, round(len(sents) * rng.uniform(0.35, 1.0)))
    chosen = rng.sample(sents, keep) if rng.random() < 0.3 else sents[:keep]
    words = " ".join(chosen).split()
    words = [typo(w, rng) if rng.random() < 0.02 else w for w in words]
    if rng.random() < 0.3:
        words = [rng.choice(FILLERS)] + words
    return " ".join(words)


def generate(n: int, seed: int = 7, pool: int | None = None, questions_per_candidate: int = 8):
    """Rows (candidate, question_id, answer); with `pool`, answers are drawn from that many texts."""
    rng = random.Random(seed)
    bases = base_answers()
    qids = sorted(bases)
    texts: dict[str, list[str]] = {q: [] for q in qids}
    if pool:
        for i in range(pool):
            q = qids[i % len(qids)]
            texts[q].append(vary(rng.choice(bases[q]), rng))
    rows: list[tuple[str, str, str]] = []
    made: dict[str, list[str]] = {q: [] for q in qids}
    cand = 0
    while len(rows) < n:
        cand += 1
        for q in rng.sample(qids, min(questions_per_candidate, len(qids))):
            if len(rows) >= n:
                break
            if pool:
                ans = rng.choice(texts[q])
            elif made[q] and rng.random() < 0.05:
                # Some answers repeat exactly (shared or copied work).
                ans = rng.choice(made[q])
            else:
                ans = vary(rng.choice(bases[q]), rng)
                made[q].append(ans)
            rows.append((f"cand-{cand:06d}", q, ans))
    return rows


def write(rows, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["candidate", "question_id", "answer"])
        w.writerows(rows)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("n", type=int)
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--pool", type=int, default=None, help="draw answers from this many distinct texts")
    a = ap.parse_args()
    write(generate(a.n, a.seed, a.pool), a.out)
