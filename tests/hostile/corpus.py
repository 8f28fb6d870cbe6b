"""Generated answer files for the crash-safety and load tests and bench/load.py (fixed seeds).

Answers are one or two sentences of a bank question's model answer with a filler word and the
odd typo: realistic enough to exercise every part of grading, short enough to embed quickly.
With `pool`, rows reuse that many distinct texts (embeddings are cached, so a large run then
measures everything but the model), as different candidates answering alike would.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FILLERS = ["I think", "Basically,", "In short:", "As far as I know,", "Well,", ""]
NAMES = ["", "🐳", "Ünïcode", "O'Brien", "=cmd", "<b>x</b>", "\u05e9\u05dc\u05d5\u05dd"]


def _sentences() -> dict[str, list[str]]:
    from grader.text import split_sentences

    bank = json.loads((ROOT / "questions.json").read_text("utf-8"))
    return {q["id"]: split_sentences(q["model_answer"]) for q in bank}


def _answer(sents: list[str], rng: random.Random, tag: int) -> str:
    picked = rng.sample(sents, min(len(sents), rng.choice((1, 1, 2))))
    words = (rng.choice(FILLERS) + " " + " ".join(picked)).split()
    if rng.random() < 0.3:
        i = rng.randrange(len(words))
        words[i] = words[i][::-1]
    return " ".join(words) + f" ({tag})"


def short_answers(n: int, seed: int, pool: int | None = None, per_candidate: int = 8) -> list[tuple[str, str, str]]:
    """n rows (candidate, question_id, answer), each candidate answering `per_candidate` questions."""
    rng = random.Random(seed)
    sentences = _sentences()
    qids = sorted(sentences)
    texts: dict[str, list[str]] = {q: [] for q in qids}
    if pool:
        for i in range(pool):
            q = qids[i % len(qids)]
            texts[q].append(_answer(sentences[q], rng, i))
    rows: list[tuple[str, str, str]] = []
    cand = 0
    while len(rows) < n:
        cand += 1
        name = f"cand-{cand:06d} {rng.choice(NAMES)}".strip()
        for q in rng.sample(qids, per_candidate):
            if len(rows) >= n:
                break
            ans = rng.choice(texts[q]) if pool else _answer(sentences[q], rng, len(rows))
            rows.append((name, q, ans))
    return rows


def write_csv(rows, path: Path) -> Path:
    """The rows as an answers CSV (bench/gen.py's writer), returning the path."""
    import sys

    root = str(Path(__file__).resolve().parents[2])
    if root not in sys.path:
        sys.path.insert(0, root)
    from bench.gen import write

    write(rows, path)
    return path
