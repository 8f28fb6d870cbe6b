"""A trained cross-encoder against the feature model on questions it never saw: `make bench-train`.

For each development set in turn: fine-tune the cross-encoder (grader/accuracy/train.py) on the
OTHER two sets (a seeded sample of --train-rows rows), then score this one; fit the feature
model's calibration on the same other two sets (leave-one-set-out, as bench/accuracy.py) and
score this one too.  Both are measured on the same rows of this set (a seeded sample of
--eval-rows rows, for time on 2 CPU cores): Pearson, QWK, RMSE.  "mean of both" is the plain
average of the two fractions (nothing fitted), a first look at whether the trained score
adds anything as a signal.  Writes a Markdown table with the date and the commit.

    python bench/train_accuracy.py [--train-rows 1000] [--eval-rows 1500] [--epochs 1]
        [--max-length 128] [--threads 2] [--out bench/results/train_accuracy.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

SETS = ["saf-train", "nn-exam", "semeval2013-train"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "train_accuracy.md")
    ap.add_argument("--train-rows", type=int, default=1000)
    ap.add_argument("--eval-rows", type=int, default=1500)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("GRADER_TRAIN_THREADS", "2")))
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--sets", nargs="*", default=SETS)
    args = ap.parse_args()

    from bench.common import commit

    from grader.scoring.calibration import load_calibration
    from grader.config import get_settings
    from grader.embedding import make_embedder, make_second_embedder
    from grader.accuracy.graded import empty_mask, signals_for
    from grader.graded_file import read_graded
    from grader.accuracy.fit import fit_on_sets
    from grader.accuracy.metrics import metrics, scale_step
    from grader.scoring.signals import SIGNALS
    from grader.accuracy.train import Pairs, TrainSettings, concat, pairs_from_rows, train_pairs
    from grader.scoring.trained import TrainedModel

    t_start = time.perf_counter()
    embedder = make_embedder(get_settings())
    cal = load_calibration(None)
    second = make_second_embedder(get_settings()) if cal.second else None
    data = {}
    for name in SETS:
        rows = read_graded(args.datasets / f"{name}.jsonl")
        data[name] = (rows, signals_for(rows, embedder, second=second))

    results = []
    for name in args.sets:
        t0 = time.perf_counter()
        others = [o for o in SETS if o != name]
        # feature model, leave-one-set-out (as bench/accuracy.py)
        fit = fit_on_sets([data[o] for o in others], cal)
        rows, X = data[name]
        idx = list(range(len(rows)))
        if len(idx) > args.eval_rows:
            idx = sorted(random.Random(args.seed).sample(idx, args.eval_rows))
        ev_rows = [rows[i] for i in idx]
        feat = fit.predict(X[idx], SIGNALS, empty_mask(ev_rows))

        # trained model on a sample of the other two sets
        train_all = concat([pairs_from_rows(data[o][0], o) for o in others])
        tr = list(range(len(train_all)))
        if len(tr) > args.train_rows:
            tr = sorted(random.Random(args.seed).sample(tr, args.train_rows))
        train_set = train_all.subset(tr)
        empty = Pairs([], [], np.zeros(0), np.zeros(0), [])
        st = TrainSettings(epochs=args.epochs, seed=args.seed, max_length=args.max_length, threads=args.threads)
        with tempfile.TemporaryDirectory() as tmp:
            t1 = time.perf_counter()
            train_pairs(train_set, empty, Path(tmp) / "m", st, progress=_progress(name))
            t_train = time.perf_counter() - t1
            model = TrainedModel.load(Path(tmp) / "m", threads=args.threads)
            ev = pairs_from_rows(ev_rows, name)
            t2 = time.perf_counter()
            trained = model.score(ev.references, ev.answers)
            t_score = time.perf_counter() - t2
        trained[empty_mask(ev_rows)] = 0.0
        human = np.array([r.score for r in ev_rows])
        max_s = np.array([r.max_score for r in ev_rows])
        step = scale_step(ev_rows)
        res = {
            "set": name, "trained_on": " + ".join(others), "train_rows": len(train_set),
            "train_questions": len(set(train_set.groups)), "eval_rows": len(ev_rows),
            "eval_questions": len({r.question_id for r in ev_rows}),
            "feature": metrics(human, feat * max_s, max_s, step),
            "trained": metrics(human, trained * max_s, max_s, step),
            "mean": metrics(human, (feat + trained) / 2 * max_s, max_s, step),
            "t_train": t_train, "t_score": t_score, "t_all": time.perf_counter() - t0,
        }
        results.append(res)
        print(f"{name}: feature {res['feature'].model_dump()} trained {res['trained'].model_dump()} "
              f"train {t_train:.0f}s score {t_score:.0f}s", file=sys.stderr, flush=True)
        _write(args, results, commit(), time.perf_counter() - t_start, embedder.name)
    return 0


def _progress(name: str):
    last = [0.0]

    def cb(done: int, total: int, loss: float) -> None:
        now = time.perf_counter()
        if now - last[0] > 30 or done == total:
            last[0] = now
            print(f"  {name}: step {done}/{total} loss {loss:.3f}", file=sys.stderr, flush=True)
    return cb


def _write(args, results, sha: str, seconds: float, model: str) -> None:
    f = lambda v: "—" if v is None else f"{v:.3f}"  # noqa: E731
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# A trained cross-encoder on questions it never saw",
        "",
        f"Measured {now} at commit {sha} by `make bench-train` (bench/train_accuracy.py): "
        f"{platform.machine()}, {args.threads} torch thread(s), {args.epochs} epoch(s), max_length {args.max_length}, "
        f"seed {args.seed}, base model `{model}` (the packaged MiniLM with a fresh one-logit head).",
        "",
        "- **trained**: cross-encoder (reference answer, answer) -> score / max_score, fine-tuned "
        f"(BCE on fractional targets) on a seeded sample of {args.train_rows} rows of the OTHER two sets.",
        "- **feature model**: the calibration refitted on the other two sets in full (leave-one-set-out, "
        "as bench/results/accuracy.md).",
        "- **mean of both**: the plain average of the two fractions, nothing fitted.",
        f"- All three measured on the same rows: a seeded sample of at most {args.eval_rows} rows of the "
        "set (for time on 2 shared CPU cores). Pearson on score / max_score; QWK on the file's scale; RMSE in points.",
        "",
        "| set | trained on | train rows (questions) | eval rows (questions) | model | pearson | qwk | rmse |",
        "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for r in results:
        for label, key in (("feature model", "feature"), ("trained", "trained"), ("mean of both", "mean")):
            m = r[key]
            lines.append(f"| {r['set']} | {r['trained_on']} | {r['train_rows']} ({r['train_questions']}) | "
                         f"{r['eval_rows']} ({r['eval_questions']}) | {label} | {f(m.pearson)} | {f(m.qwk)} | {f(m.rmse)} |")
    lines += ["", "## Timing", "", "| set | training (s) | scoring (s) | all (s) |", "| --- | ---: | ---: | ---: |"]
    for r in results:
        lines.append(f"| {r['set']} | {r['t_train']:.0f} | {r['t_score']:.0f} | {r['t_all']:.0f} |")
    lines += ["", f"Total {seconds:.0f} s.", ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
