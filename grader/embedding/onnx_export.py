"""Makes the ONNX copy of a sentence-transformers model, once, and checks it against the original.

Run at set-up (`python -m grader.embedding.onnx_export`, in `make setup`) or by the onnx backend on
first use. It imports torch and sentence-transformers, which the copy then spares every run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

from grader.embedding.base import configure_threads, offline_transformers
from grader.embedding.onnx_model import (
    EXPORT_FORMAT, META_FILE, MIN_COSINE, ONNX_FILE, locate, open_session, open_tokenizer, run_model,
)
from grader.errors import ConfigError

# Texts the copy is checked on: lengths from nothing to past the model's limit, symbols, code,
# other scripts; batched together (padding) and alone (none), as the backend will meet them.
CHECK_TEXTS = [
    "",
    "a",
    "Yes.",
    "A cache keeps recently used data close so the next read is cheap.",
    "An index is a B-tree over a column: lookups go from O(n) to O(log n), writes get slower.",
    "SELECT * FROM users WHERE id = 42; -- then EXPLAIN ANALYZE it",
    "def f(x):\n    return {k: v for k, v in x.items() if v is not None}",
    "Idempotent means PUT twice == PUT once; POST is not (it creates two resources).",
    "Ünïcödé café naïve — “quoted” text, 数据库 and émojis 🚀 in one answer.",
    "TCP gives ordered, reliable delivery with a handshake; UDP sends datagrams and forgets them.",
    "I don't know.",
    "Docker containers share the host kernel, whereas virtual machines each run their own.",
    "CAP: under a network partition a distributed store chooses consistency or availability.",
    "   spaces   and\ttabs\nand newlines   ",
    " ".join(["Horizontal scaling adds machines behind a load balancer instead of a bigger one."] * 30),
]


def export(model: str, model_dir: Path, copy_dir: Path, *, threads: int = 2) -> dict:
    """Exports the model's transformer to copy_dir/model.onnx and checks its vectors; returns the
    check's record (also written to copy_dir/export.json). Refuses a copy that differs."""
    configure_threads(threads)
    offline_transformers()
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(threads)
    st = SentenceTransformer(str(model_dir), device="cpu")
    transformer = st[0].auto_model.eval()

    class Tokens(torch.nn.Module):
        """The transformer's token vectors; pooling stays outside, in numpy."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=torch.zeros_like(input_ids)).last_hidden_state

    copy_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=copy_dir.name + ".", dir=copy_dir.parent))
    try:
        ids = torch.ones((2, 8), dtype=torch.int64)
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Tokens(transformer), (ids, torch.ones_like(ids)), str(tmp / ONNX_FILE),
                input_names=["input_ids", "attention_mask"], output_names=["token_embeddings"],
                dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                              "token_embeddings": {0: "batch", 1: "tokens"}},
                opset_version=17, dynamo=False,
            )
        record = check(st, tmp / ONNX_FILE, model_dir, threads)
        record.update(model=model, format=EXPORT_FORMAT, torch=torch.__version__)
        (tmp / META_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        tmp.chmod(0o755)  # mkdtemp's folder is private; the copy is as readable as the model
        try:
            tmp.rename(copy_dir)
        except OSError:  # another process made the same copy first: theirs is as good
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return record


def check(st, onnx_path: Path, model_dir: Path, threads: int) -> dict:
    """The least cosine between the copy's and sentence-transformers' vectors on CHECK_TEXTS,
    batched and one at a time; raises ConfigError below MIN_COSINE."""
    tokenizer = open_tokenizer(model_dir, st.max_seq_length)
    session = open_session(onnx_path, threads)
    want = st.encode(CHECK_TEXTS, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    batched = run_model(session, tokenizer, CHECK_TEXTS, batch_size=64)
    alone = np.vstack([run_model(session, tokenizer, [t], batch_size=1) for t in CHECK_TEXTS])
    least = float(min((batched * want).sum(axis=1).min(), (alone * want).sum(axis=1).min()))
    if least < MIN_COSINE:
        raise ConfigError(f"the ONNX copy of {model_dir} gives other vectors than sentence-transformers "
                          f"(least cosine {least:.6f} < {MIN_COSINE}); use "
                          "GRADER_EMBEDDING_BACKEND=sentence-transformers")
    return {"least_cosine": round(least, 8), "check_texts": len(CHECK_TEXTS),
            "max_seq_length": st.max_seq_length}


def main(argv: list[str] | None = None) -> int:
    """Makes the ONNX copy of the configured embedding model unless it exists."""
    from grader.config import get_settings

    p = argparse.ArgumentParser(prog="python -m grader.embedding.onnx_export", description=main.__doc__)
    p.add_argument("--model", help="model (default: GRADER_EMBEDDING_MODEL)")
    args = p.parse_args(argv)
    s = get_settings()
    model = args.model or s.embedding_model
    try:
        model_dir, copy_dir, _ = locate(model, s.onnx_dir)
        if not (copy_dir / META_FILE).is_file():
            export(model, model_dir, copy_dir, threads=s.thread_count())
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    meta = json.loads((copy_dir / META_FILE).read_text(encoding="utf-8"))
    print(f"ONNX copy of {model}: {copy_dir} (least cosine to sentence-transformers "
          f"{meta['least_cosine']:.6f} on {meta['check_texts']} texts)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
