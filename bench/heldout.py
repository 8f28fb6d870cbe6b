"""What is said, not which words: the bank's held-out answers and the new-user answers.

Scores `tests/data/heldout/*.jsonl` (answers written apart from the exemplars, never used to fit
anything) against the targets of each kind, checks strong > partial > wrong per question, and
scores `../shared/examples/new-user-answers.jsonl` against the interviewer's range, and scores
every graded exemplar with the other exemplars of its question (leave one out: the development
figure that choices about exemplars are made on, since the held-out answers are not for tuning).

    python bench/heldout.py [--out bench/results/heldout.md] [--heldout DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import commit  # noqa: E402

# Each kind's target on a 10-point question (the bar).
TARGETS = {"strong": (8, 10), "paraphrase": (7, 10), "partial": (3, 7), "wrong": (0, 3), "swapped": (0, 3),
           "hedged": (0, 3)}


def _rows(folder: Path) -> list[dict]:
    return [json.loads(line) for f in sorted(folder.glob("*.jsonl"))
            for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "heldout.md")
    ap.add_argument("--heldout", type=Path, default=ROOT / "tests" / "data" / "heldout")
    ap.add_argument("--examples", type=Path, default=ROOT.parent / "shared" / "examples" / "new-user-answers.jsonl")
    ap.add_argument("--rubrics", type=Path, default=None, help="default: the configured rubric folder")
    args = ap.parse_args()

    from grader.bank import load_bank
    from grader.config import get_settings
    from grader.scoring import Item, grader_from_settings

    s = get_settings()
    bank = load_bank(s.questions, args.rubrics or s.rubrics_dir)
    g = grader_from_settings(s)
    t0 = time.perf_counter()
    rows = _rows(args.heldout)
    results = g.grade_many([Item(bank.get(r["question_id"]), bank.rubrics[r["question_id"]], r["answer"]) for r in rows])
    by_kind: dict[str, list[float]] = defaultdict(list)
    by_q: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r, res in zip(rows, results):
        by_kind[r["kind"]].append(res.score)
        by_q[r["question_id"]][r["kind"]].append(res.score)

    def mean(xs):
        return sum(xs) / len(xs)

    lines = [
        "# Held-out answers: what is said, not which words", "",
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC · commit {commit()} · {len(rows)} held-out answers "
        f"of {len(by_q)} questions · {time.perf_counter() - t0:.0f} s", "",
        "Every answer scored alone through `Grader`, as `grader grade` scores it (the default mix).", "",
        "| kind | target | inside | mean score | min | max |", "| --- | --- | --- | --- | --- | --- |",
    ]
    for kind, (lo, hi) in TARGETS.items():
        xs = by_kind.get(kind, [])
        if not xs:
            continue
        inside = sum(lo <= x <= hi for x in xs)
        lines.append(f"| {kind} | {lo}-{hi} | {inside}/{len(xs)} | {mean(xs):.2f} | {min(xs):.2f} | {max(xs):.2f} |")
    ordered = [q for q, k in by_q.items()
               if mean(k["strong"]) > mean(k["partial"]) > max(mean(k["wrong"]), mean(k["swapped"]))]
    lines += ["", f"Questions where strong > partial > wrong and swapped (means): {len(ordered)}/{len(by_q)}."]
    missed = sorted(set(by_q) - set(ordered))
    if missed:
        lines.append(f"Not ordered: {', '.join(missed)}.")
    if args.examples.exists():
        ex = [json.loads(x) for x in args.examples.read_text(encoding="utf-8").splitlines() if x.strip()]
        got = g.grade_many([Item(bank.get(r["question_id"]), bank.rubrics[r["question_id"]], r["answer"]) for r in ex])
        inside, off = 0, 0.0
        for r, res in zip(ex, got):
            lo, hi = (float(v) for v in (re.findall(r"\d+(?:\.\d+)?", r["interviewer"]) * 2)[:2])
            inside += lo <= res.score <= hi
            off += max(0.0, lo - res.score, res.score - hi)
        lines += ["", f"New-user answers ({args.examples.name}): {inside}/{len(ex)} inside the interviewer's "
                  f"range; mean points outside it {off / len(ex):.2f}."]
    lines += ["", *_exemplars_left_out(g, bank)]
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


def _exemplars_left_out(g, bank) -> list[str]:
    """Each exemplar scored as an unseen answer, its question's other exemplars in place: per kind,
    the interviewers' mean grade, grader's mean score and the mean absolute difference."""
    from scipy.stats import pearsonr

    from grader.scoring import Item

    items, rows = [], []
    for qid, rubric in bank.rubrics.items():
        for i, e in enumerate(rubric.exemplars):
            others = rubric.model_copy(update={"exemplars": rubric.exemplars[:i] + rubric.exemplars[i + 1:]})
            items.append(Item(bank.get(qid), others, e.answer))
            rows.append((e.kind, 10 * e.score / rubric.points))
    got = [10 * r.score / r.max_score for r in g.grade_many(items)]
    by_kind: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for (kind, grade), score in zip(rows, got):
        by_kind[kind].append((grade, score))
    human = [grade for _, grade in rows]
    out = [f"Exemplars, each left out of its question's ({len(rows)}): Pearson {pearsonr(human, got)[0]:.3f}, "
           f"mean absolute difference {sum(abs(a - b) for a, b in zip(human, got)) / len(rows):.2f} points.", "",
           "| kind | n | grade | score | mean abs. difference |", "| --- | --- | --- | --- | --- |"]
    for kind, pairs in sorted(by_kind.items()):
        n = len(pairs)
        out.append(f"| {kind} | {n} | {sum(a for a, _ in pairs) / n:.2f} | {sum(b for _, b in pairs) / n:.2f} | "
                   f"{sum(abs(a - b) for a, b in pairs) / n:.2f} |")
    return out


if __name__ == "__main__":
    raise SystemExit(main())
