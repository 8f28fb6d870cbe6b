"""Which mix should `grade` ship by default: the rubric mix or the shipped calibration?

Both are run through the same pipeline (`Grader`, each answer scored alone, as `grade`
scores it) and measured on:

- the bank: model answers (>= 9), paraphrases (tests/data/paraphrases.json, >= 7), other
  questions' model answers (<= 3), and the new-user answers of ../shared/examples (share
  inside the interviewer's range, mean distance to it);
- held-out questions of the development sets: a seeded sample of rows of each set, each
  question given a drafted rubric (grader.scoring.draft) and its reference answer as the
  model answer.  The rubric mix is fitted on nothing.  The calibration is fitted on the
  other two sets only (leave-one-set-out), so every question it scores is unseen; the
  shipped calibration (fitted on all three sets, so not held out) is shown beside it.

    python bench/default_mix.py [--rows 600] [--out bench/results/default_mix.md]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import commit, machine  # noqa: E402

SETS = ["saf-train", "nn-exam", "semeval2013-train"]


def _range(text: str) -> tuple[float, float]:
    nums = [float(x) for x in re.findall(r"\d+(?:\.\d+)?", text)[:2]]
    return min(nums), max(nums)


def bank_figures(grader, bank) -> dict:
    from grader.scoring import Item

    qs = list(bank.questions.values())
    para = json.loads((ROOT / "tests" / "data" / "paraphrases.json").read_text(encoding="utf-8"))
    model = grader.grade_many([Item(q, bank.rubrics[q.id], q.model_answer) for q in qs])
    paras = grader.grade_many([Item(q, bank.rubrics[q.id], para[q.id]) for q in qs])
    other = grader.grade_many([Item(q, bank.rubrics[q.id], o.model_answer) for q in qs for o in qs if o.id != q.id])
    rows = [json.loads(line) for line in (ROOT.parent / "shared" / "examples" / "new-user-answers.jsonl")
            .read_text(encoding="utf-8").splitlines() if line.strip()]
    new = grader.grade_many([Item(bank.questions[r["question_id"]], bank.rubrics[r["question_id"]], r["answer"])
                             for r in rows])
    inside, dist = 0, []
    for r, res in zip(rows, new):
        lo, hi = _range(r["interviewer"])
        d = max(0.0, lo - res.score, res.score - hi)
        inside += d == 0
        dist.append(d)
    return {
        "model answers >= 9": f"{sum(r.score >= 9 for r in model)}/{len(model)}",
        "paraphrases >= 7": f"{sum(r.score >= 7 for r in paras)}/{len(paras)}",
        "other questions' model answers <= 3": f"{sum(r.score <= 3 for r in other)}/{len(other)}",
        "new-user answers inside the interviewer's range": f"{inside}/{len(rows)}",
        "new-user answers: mean points outside the range": f"{np.mean(dist):.2f}",
    }


def sample(rows, n: int, seed: int = 13):
    if n <= 0 or len(rows) <= n:
        return rows
    return random.Random(seed).sample(rows, n)


def items_for(rows):
    from grader.models import Question
    from grader.scoring import Item
    from grader.scoring.draft import draft_rubric

    rubrics, out = {}, []
    for r in rows:
        if r.question_id not in rubrics:
            rubrics[r.question_id] = draft_rubric("q", r.reference_answer, r.question, points=r.max_score)
        q = Question.model_construct(id="q", topic="dev", question=r.question, model_answer=r.reference_answer)
        out.append(Item(q, rubrics[r.question_id], r.answer))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets")
    ap.add_argument("--rows", type=int, default=600, help="rows sampled per set (0: all)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "default_mix.md")
    args = ap.parse_args()

    from grader.accuracy.fit import fit_on_sets
    from grader.accuracy.graded import signals_for
    from grader.graded_file import read_graded
    from grader.accuracy.metrics import metrics, scale_step
    from grader.bank import load_bank
    from grader.config import get_settings
    from grader.embedding import make_embedder, make_second_embedder
    from grader.models import Weights
    from grader.scoring import Grader
    from grader.scoring.calibration import load_calibration
    from grader.scoring.combine import CalibratedMix, RubricMix

    t0 = time.perf_counter()
    s = get_settings()
    embedder = make_embedder(s)
    shipped = load_calibration()
    second = make_second_embedder(s) if shipped.second else None
    rubric_mix = RubricMix(Weights(keywords=s.keyword_weight, semantic=s.semantic_weight))
    bank = load_bank(s.questions, s.rubrics_dir)
    figures = {"rubric mix": bank_figures(Grader(embedder, rubric_mix), bank),
               "shipped calibration": bank_figures(Grader(embedder, CalibratedMix(shipped), second=second), bank)}
    print("bank done", round(time.perf_counter() - t0), "s", flush=True)

    data = {}
    for name in SETS:
        rows = sample(read_graded(args.datasets / f"{name}.jsonl"), args.rows)
        data[name] = (rows, signals_for(rows, embedder, None, second))
        print(name, "signals", round(time.perf_counter() - t0), "s", flush=True)
    dev = {}
    for name in SETS:
        rows, _ = data[name]
        loso = fit_on_sets([data[o] for o in SETS if o != name], shipped)
        human = np.array([r.score for r in rows])
        max_s = np.array([r.max_score for r in rows])
        step = scale_step(rows)
        items = items_for(rows)
        dev[name] = {}
        for label, mix in (("rubric mix", rubric_mix), ("calibration, leave-one-set-out", CalibratedMix(loso)),
                           ("shipped calibration (not held out)", CalibratedMix(shipped))):
            res = Grader(embedder, mix, second=second).grade_many(items)
            pred = np.array([r.score / r.max_score for r in res]) * max_s
            dev[name][label] = metrics(human, pred, max_s, step)
        print(name, "scored", round(time.perf_counter() - t0), "s", flush=True)

    lines = [
        "# The default mix: rubric mix against the shipped calibration",
        "",
        f"{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} · commit {commit()} · {machine()} · "
        f"{args.rows or 'all'} rows sampled per development set (seed 13) · {time.perf_counter() - t0:.0f} s",
        "",
        "Every answer scored alone through `Grader`, as `grader grade` scores it.",
        "",
        "## The bank",
        "",
        "| figure | rubric mix | shipped calibration |",
        "| --- | --- | --- |",
    ]
    for k in figures["rubric mix"]:
        lines.append(f"| {k} | {figures['rubric mix'][k]} | {figures['shipped calibration'][k]} |")
    lines += ["", "## Held-out questions of the development sets (drafted rubrics)", "",
              "| set | mix | Pearson | QWK | RMSE | n |", "| --- | --- | --- | --- | --- | --- |"]
    for name in SETS:
        for label, m in dev[name].items():
            lines.append(f"| {name} | {label} | {m.pearson:.3f} | {m.qwk:.3f} | {m.rmse:.3f} | {m.n} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
