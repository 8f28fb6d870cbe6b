"""Learning from graded answers: the K-per-question curve (accuracy) and its cost (speed).

    python bench/graded.py curve [--repeats 5] [--seeds 0,5,10]  -> bench/results/graded_curve.md
    python bench/graded.py cost [--rows 1500] [--per-question 100] -> bench/results/graded_cost.md

curve: on each development set of ../shared/datasets, `evaluate --graded-per-question K` for
K = 0, 3, 5, 10, 20 (Pearson, QWK, RMSE on the answers not in the pool, mean of --repeats seeds),
zero-shot on the same answers beside it; the spread over seed blocks (--seeds) says how much of a
difference the choice of split alone makes. Then leave-one-set-out: the blend fitted on two sets'
graded answers (K = 10 per question), applied to the third.
cost: `grader batch` of generated answers at two sizes, warm caches, with and without a graded
file of --per-question answers per question: time per answer and fixed time, in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import commit, machine  # noqa: E402

SETS = ["saf-train", "nn-exam", "semeval2013-train"]
KS = [0, 3, 5, 10, 20]
TARGETS = {"saf-train": ("pearson", 0.58), "nn-exam": ("pearson", 0.70), "semeval2013-train": ("qwk", 0.55)}


def prepared(name: str, datasets: Path):
    """A set's rows and what learning starts from (zero-shot fractions and whole-answer vectors, as
    evaluate computes them)."""
    from grader.accuracy.with_graded import zero_shot_inputs
    from grader.config import get_settings
    from grader.embedding import make_embedder, make_second_embedder
    from grader.graded_file import read_graded
    from grader.scoring import Grader
    from grader.scoring.calibration import load_calibration

    s = get_settings()
    emb = make_embedder(s)
    cal = load_calibration(None)
    rows = read_graded(datasets / f"{name}.jsonl")
    return rows, zero_shot_inputs(rows, emb, cal, Grader(emb), second=make_second_embedder(s) if cal.second else None)


def curve(args) -> None:
    import numpy as np

    from grader.accuracy.metrics import metrics, scale_step
    from grader.accuracy.with_graded import evaluate_per_question, learned, sets_of, split_per_question
    from grader.scoring.graded import fit_blend

    log = lambda *x: print(*x, file=sys.stderr, flush=True)  # noqa: E731
    started = machine(load=True)
    data, table = {}, {}
    seeds = [int(x) for x in args.seeds.split(",")]
    for name in SETS:
        t = time.perf_counter()
        data[name] = prepared(name, args.datasets)
        log(f"{name}: {len(data[name][0])} answers prepared in {time.perf_counter() - t:.0f} s")
        rows, zs = data[name]
        for k in KS:
            figs = [evaluate_per_question(name, rows, zs, k, seed=s0, repeats=args.repeats) for s0 in seeds]
            table[(name, k)] = figs
            log(f"  K={k}: pearson {np.mean([f.pearson for f in figs]):.4f}, qwk {np.mean([f.qwk for f in figs]):.4f}")
    # Leave one set out: the blend fitted on the other sets' pools (K=10), applied to this one's.
    loso = {}
    for name in SETS:
        others = {}
        for o in SETS:
            if o != name:
                rows, zs = data[o]
                pool, _ = split_per_question(rows, 10, 0)
                others.update({f"{o}/{q}": g for q, g in sets_of(rows, zs, pool).items()})
        rows, zs = data[name]
        pool, scored = split_per_question(rows, 10, 0)
        pred, blend = learned(rows, zs, pool, scored, fit_blend(others))
        own = evaluate_per_question(name, rows, zs, 10, seed=0, repeats=1)
        human = np.array([rows[i].score for i in scored])
        mx = np.array([rows[i].max_score for i in scored])
        m = metrics(human, pred * mx, mx, scale_step(rows))
        loso[name] = (m, own, blend)

    def mean(figs, attr):
        return float(np.mean([getattr(f, attr) for f in figs]))

    def sd(figs, attr):
        return float(np.std([getattr(f, attr) for f in figs]))

    lines = ["# Learning from graded answers: the K-per-question curve", "",
             f"- Date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
             f"- Commit: {commit()}", f"- Machine: {started}",
             f"- Run: `bench/graded.py curve --repeats {args.repeats} --seeds {args.seeds}`: per question K random graded "
             "answers as the pool, the rest scored (`grader evaluate FILE --graded-per-question K`); each figure the mean "
             f"over {len(seeds)} blocks of {args.repeats} seeds, ± the standard deviation between the blocks (the spread "
             "the choice of split alone gives). Zero-shot: the shipped score on the same answers.", "",
             "| set | K | answers scored | Pearson | QWK | RMSE | zero-shot Pearson / QWK / RMSE |",
             "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for name in SETS:
        for k in KS:
            f = table[(name, k)]
            zs = [x.zero_shot for x in f]
            lines.append(f"| {name} | {k} | {round(mean(f, 'n'))} | {mean(f, 'pearson'):.4f} ± {sd(f, 'pearson'):.4f} | "
                         f"{mean(f, 'qwk'):.4f} ± {sd(f, 'qwk'):.4f} | {mean(f, 'rmse'):.4f} | "
                         f"{np.mean([x.pearson for x in zs]):.4f} / {np.mean([x.qwk for x in zs]):.4f} / "
                         f"{np.mean([x.rmse for x in zs]):.4f} |")
    lines += ["", "## Targets at K = 10", "", "| set | figure | measured | target | |", "| --- | --- | ---: | ---: | --- |"]
    for name in SETS:
        metric, target = TARGETS[name]
        v = mean(table[(name, 10)], metric)
        lines.append(f"| {name} | {metric} | {v:.4f} | ≥ {target} | {'pass' if v >= target else '**short**'} |")
    below = [f"{n} K={k} {m} {mean(table[(n, k)], m):.4f} ± {sd(table[(n, k)], m):.4f} against {mean(table[(n, 0)], m):.4f}"
             for n in SETS for k in KS for m in ("pearson", "qwk")
             if mean(table[(n, k)], m) < mean(table[(n, 0)], m) - 1e-9]
    lines += ["", "Every point at least the zero-shot figure (Pearson and QWK, K = 0): "
              + ("yes." if not below else "**no**: " + "; ".join(below) + "."), "",
              "## Leave one set out (K = 10, seed 0)", "",
              "The blend's coefficients fitted on the other two sets' graded answers, applied with this set's own "
              "graded answers (pool and scored answers as above), against fitting them on this set's pool.", "",
              "| set | Pearson, coefficients from the other sets | QWK | Pearson, own pool | QWK | coefficients (offset, neighbours, residuals) |",
              "| --- | ---: | ---: | ---: | ---: | --- |"]
    for name in SETS:
        m, own, b = loso[name]
        lines.append(f"| {name} | {m.pearson:.4f} | {m.qwk:.4f} | {own.pearson:.4f} | {own.qwk:.4f} | "
                     f"{b.offset:g}, {b.neighbours:g}, {b.residuals:g} |")
    lines += ["", "Reproduce with `make bench-accuracy` (or `python bench/graded.py curve`)."]
    out = ROOT / "bench" / "results" / "graded_curve.md"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


def cost(args) -> None:
    from bench.gen import generate, write

    PY = sys.executable
    grader = str(Path(PY).parent / "grader")
    work = Path(tempfile.mkdtemp(prefix="grader-graded-"))
    env = dict(os.environ, GRADER_CACHE_DIR=str(work / "cache"))
    sizes = (args.rows // 3, args.rows)
    files = {}
    for n in sizes:
        files[n] = work / f"a{n}.csv"
        write(generate(n, seed=7), files[n])
    by_q: dict[str, int] = {}
    graded = []
    for i, (_, q, a) in enumerate(generate(args.per_question * 40, seed=11)):
        if by_q.get(q, 0) < args.per_question:
            by_q[q] = by_q.get(q, 0) + 1
            graded.append({"question_id": q, "answer": a, "score": (i * 7) % 11, "max_score": 10})
    gfile = work / "graded.jsonl"
    gfile.write_text("".join(json.dumps(g) + "\n" for g in graded), encoding="utf-8")

    def timed(n, extra):
        t = time.perf_counter()
        r = subprocess.run([grader, "batch", str(files[n]), "--results", str(work / "r.jsonl"), "--force", "--quiet",
                            *extra], env=env, capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError(r.stderr[-2000:])
        return time.perf_counter() - t

    for n in sizes:  # warm every cache: the embeddings are not what is measured
        timed(n, []), timed(n, ["--graded", str(gfile)])
    runs: dict[tuple[int, bool], list[float]] = {}
    for _ in range(3):
        for n in sizes:
            for g in (False, True):
                runs.setdefault((n, g), []).append(timed(n, ["--graded", str(gfile)] if g else []))
    t = {k: statistics.median(v) for k, v in runs.items()}
    small, big = sizes
    per = {g: (t[(big, g)] - t[(small, g)]) / (big - small) for g in (False, True)}
    fixed = {g: t[(big, g)] - per[g] * big for g in (False, True)}
    qn = len(by_q)
    lines = ["# Learning from graded answers: cost", "",
             f"- Date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}", f"- Commit: {commit()}",
             f"- Machine: {machine(load=True)}",
             f"- Run: `bench/graded.py cost --rows {args.rows} --per-question {args.per_question}`: `grader batch` of "
             f"{small} and {big} generated answers (bench/gen.py, seed 7), warm caches, with and without a graded "
             f"file of {len(graded)} answers ({args.per_question} for each of {qn} questions); median of 3, "
             "alternating. Per answer: the difference between the two sizes over the difference in answers; fixed: "
             "what is left (start-up, and with `--graded` grading the graded answers once).", "",
             "| run | " + " | ".join(f"{n} answers" for n in sizes) + " | per answer | fixed |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for g, label in ((False, "zero-shot"), (True, "`--graded`")):
        lines.append(f"| {label} | " + " | ".join(f"{t[(n, g)]:.1f} s" for n in sizes)
                     + f" | {1000 * per[g]:.2f} ms | {fixed[g]:.1f} s |")
    ratio = per[True] / per[False]
    lines += ["", f"Per answer, `--graded` / zero-shot: **{ratio:.2f}×** (target ≤ 1.1×): "
              f"{'met' if ratio <= 1.1 else '**not met**'}. Once per run, `--graded` also grades its "
              f"{len(graded)} graded answers (their zero-shot scores are what the blend is fitted on): "
              f"{fixed[True] - fixed[False]:.1f} s here.", "",
              "Reproduce with `make bench` (or `python bench/graded.py cost`)."]
    out = ROOT / "bench" / "results" / "graded_cost.md"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["curve", "cost"])
    ap.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seeds", default="0,5,10", help="first seeds of the blocks of --repeats seeds")
    ap.add_argument("--rows", type=int, default=1500)
    ap.add_argument("--per-question", type=int, default=100)
    args = ap.parse_args()
    curve(args) if args.what == "curve" else cost(args)


if __name__ == "__main__":
    main()
