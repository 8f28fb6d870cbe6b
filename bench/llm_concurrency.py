"""LLM concurrency: `grader batch --llm` on 200 answers against the loopback test server (fixed delay)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
DELAY = 0.75  # seconds the server takes per reply (real LLM replies take longer still)


def measure_llm_concurrency(work: Path, env: dict, n: int = 200) -> tuple[float, float, int]:
    """Wall time of the same batch --llm at concurrency 1 and 8 (no cache), and n."""
    from llm_server import start_server

    from bench.gen import generate, write

    state, srv = start_server()
    state.behave("slow", delay=DELAY)
    inp = work / "llm.csv"
    write(generate(n, seed=21), inp)
    base = dict(env, OPENAI_BASE_URL=state.url, OPENAI_API_KEY="sk-bench", GRADER_LLM_MODEL="bench-model")
    # Embeddings first, so both timed runs find them cached and time the LLM part alike.
    subprocess.run([sys.executable, "-m", "grader.cli", "batch", str(inp), "--results", str(work / "llm0.jsonl"),
                    "--quiet"], env=base, check=True, cwd=ROOT)
    times = []
    for c in (1, 8):
        e = dict(base, GRADER_LLM_CONCURRENCY=str(c))
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "grader.cli", "batch", str(inp), "--llm", "--no-cache", "--quiet",
                        "--results", str(work / f"llm{c}.jsonl")], env=e, check=True, cwd=ROOT)
        times.append(time.perf_counter() - t)
    srv.shutdown()
    return times[0], times[1], n


if __name__ == "__main__":
    import tempfile

    w = Path(tempfile.mkdtemp())
    c1, c8, n = measure_llm_concurrency(w, dict(os.environ, GRADER_CACHE_DIR=str(w / "cache")))
    print(f"{n} answers: concurrency 1 {c1:.1f} s, 8 {c8:.1f} s, ratio {c1 / c8:.1f}x")
