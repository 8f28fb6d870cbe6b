"""Agreement with human graders on the development sets: `make bench-accuracy`.

For each set of ../shared/datasets: the zero-shot figure (the shipped calibration as it is),
K-fold cross-validation grouped by question (calibration fitted on the file's other
questions), and leave-one-set-out (calibration fitted on the other two sets only: the
figure for a set of questions and graders never seen).  Writes a Markdown table of every
metric with the date, the commit and the timings.

    python bench/accuracy.py [--datasets DIR] [--out bench/results/accuracy.md] [--cv 5]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import commit  # noqa: E402

SETS = ["saf-train", "nn-exam", "semeval2013-train"]
# The targets: metric and bar, with --cv 5 grouped by question.
TARGETS = {"saf-train": ("pearson", 0.45), "nn-exam": ("pearson", 0.62), "semeval2013-train": ("qwk", 0.42)}
METRICS = ["pearson", "spearman", "qwk", "rmse", "mae"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "accuracy.md")
    ap.add_argument("--cv", type=int, default=5)
    ap.add_argument("--calibration", type=Path, default=None, help="default: the shipped one")
    args = ap.parse_args()

    from grader.scoring.calibration import load_calibration
    from grader.config import get_settings
    from grader.embedding import make_embedder, make_second_embedder
    from grader.accuracy.metrics import Metrics, metrics, scale_step
    from grader.accuracy.graded import empty_mask, signals_for
    from grader.graded_file import read_graded
    from grader.accuracy.evaluate import evaluate
    from grader.accuracy.fit import fit_on_sets
    from grader.scoring.signals import SIGNALS

    settings = get_settings()
    embedder = make_embedder(settings)
    cal = load_calibration(args.calibration)
    second = make_second_embedder(settings) if cal.second else None
    data = {}
    timings = {}
    for name in SETS:
        path = args.datasets / f"{name}.jsonl"
        t0 = time.perf_counter()
        rows = read_graded(path)
        X = signals_for(rows, embedder, second=second)
        t_sig = time.perf_counter() - t0
        t1 = time.perf_counter()
        ev = evaluate(rows, embedder, cal, cv=args.cv, file=str(path), X=X)
        t_eval = time.perf_counter() - t1
        data[name] = (rows, X, ev)
        timings[name] = (len(rows), t_sig, t_eval)
        print(f"{name}: zero-shot {ev.zero_shot.model_dump()} cv {ev.cv.model_dump()}", file=sys.stderr)

    # Leave one set out: fit on the other two (each weighing the same), score this one.
    loso: dict[str, Metrics] = {}
    for name in SETS:
        fit = fit_on_sets([data[o][:2] for o in SETS if o != name], cal)
        rows, X, _ = data[name]
        max_s = np.array([r.max_score for r in rows])
        pred = fit.predict(X, SIGNALS, empty_mask(rows)) * max_s
        loso[name] = metrics(np.array([r.score for r in rows]), pred, max_s, scale_step(rows))

    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Agreement with human graders",
        "",
        f"Measured {now} at commit {commit()} by `make bench-accuracy` (bench/accuracy.py) with "
        f"the embedding model `{embedder.name}`"
        + (f" (and `{second.name}` for the calibration's second view)" if second else "")
        + " and the calibration "
        f"`{args.calibration or 'grader/data/calibration.json'}` ({', '.join(f.features.__len__().__str__() + ' signals' for f in cal.fits)}).",
        "",
        "- **zero-shot**: the shipped calibration as it is (it was fitted on these three sets pooled, so "
        "on them this is an in-sample figure; see leave-one-set-out for a set never seen).",
        f"- **cv{args.cv} by question**: {args.cv}-fold cross-validation with folds grouped by question: each answer scored "
        "by a calibration fitted on other questions of the same file only. The figure to quote.",
        "- **leave-one-set-out**: calibration fitted on the other two sets only (each set and each "
        "question weighing the same), applied to this one.",
        "- pearson/spearman on score / max_score (saf mixes maxima of 0.5 to 3.5 points: on points the "
        "maxima alone would correlate); rmse/mae in points; qwk (sklearn, quadratic) after rounding "
        "human scores and predictions to the file's scale (whole points, or half points where a file "
        "has fractional scores), halves up.",
        "",
        "| set | figure | n | pearson | spearman | qwk | rmse | mae |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in SETS:
        rows, _, ev = data[name]
        for label, src in (("zero-shot", ev.zero_shot), (f"cv{args.cv} by question", ev.cv),
                           ("leave-one-set-out", loso[name])):
            cells = ["—" if getattr(src, m) is None else f"{getattr(src, m):.3f}" for m in METRICS]
            lines.append(f"| {name} | {label} | {src.n} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Targets (cv, grouped by question)",
        "",
        "| set | metric | target | cv | zero-shot | met |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    for name in SETS:
        _, _, ev = data[name]
        metric, bar = TARGETS[name]
        got, zs = getattr(ev.cv, metric), getattr(ev.zero_shot, metric)
        met = "yes" if got is not None and got >= bar else "**no**"
        # Four places: a figure within 0.0005 of its bar must not pass by rounding.
        lines.append(f"| {name} | {metric} | {bar:.2f} | {got:.4f} | {zs:.4f} | {met} |")
    lines += [
        "",
        "## Timing",
        "",
        f"{platform.machine()}, {settings.thread_count()} torch threads. Signals include embedding "
        "(read from the on-disk cache when a text was embedded before); evaluation is the zero-shot "
        "scoring, the cross-validation fits and the metrics.",
        "",
        "| set | answers | signals (s) | evaluation (s) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name in SETS:
        n, ts, te = timings[name]
        lines.append(f"| {name} | {n} | {ts:.1f} | {te:.1f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
