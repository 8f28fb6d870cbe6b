"""The ONNX copy of a sentence-transformers model: where it is kept, what it must be, how it runs.

The copy is the model's transformer exported to ONNX (grader.embedding.onnx_export); running it
is tokenising with the model's own tokenizer, the copy, then mean pooling under the attention
mask and L2 normalisation, as sentence-transformers does.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from grader.embedding.base import configure_threads, resolve_model_path
from grader.errors import ConfigError

# Bumped whenever the export changes, so older copies are never used.
EXPORT_FORMAT = 1
# The least cosine between this backend's and sentence-transformers' vector of any check text.
MIN_COSINE = 0.9999
ONNX_FILE = "model.onnx"
META_FILE = "export.json"
# Padded tokens per batch: bigger batches of long texts cost more than they save (attention
# grows with the square of the width), measured in bench/results/performance.md.
TOKEN_BUDGET = 512


def default_store() -> Path:
    """Where ONNX copies are kept when GRADER_ONNX_DIR is unset: the user's cache folder."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "grader" / "onnx"


def model_key(model: str, model_dir: Path) -> str:
    """Names the copy of one model's files: changed weights, config or tokenizer mean a new copy.

    File sizes rather than contents keep start-up cheap (hashing 90 MB of weights costs 0.2 s);
    the configuration files, which name the architecture, are hashed whole."""
    h = hashlib.sha256(f"{EXPORT_FORMAT}\0{model}\0{model_dir.resolve()}".encode())
    for f in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        rel = f.relative_to(model_dir).as_posix()
        h.update(f"\0{rel}\0{f.stat().st_size}".encode())
        if f.suffix == ".json" and f.stat().st_size < 1_000_000:
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def read_layout(model_dir: Path) -> int:
    """The model's max_seq_length, after checking it is a transformer with mean pooling and
    nothing this backend does not run (sentence-transformers runs any other model)."""
    try:
        modules = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        pooling = next(m for m in modules if m["type"].endswith("Pooling"))
        pool = json.loads((model_dir / pooling["path"] / "config.json").read_text(encoding="utf-8"))
        max_len = int(json.loads((model_dir / "sentence_bert_config.json").read_text(encoding="utf-8"))
                      .get("max_seq_length") or 512)
    except (OSError, ValueError, KeyError, StopIteration, TypeError) as exc:
        raise ConfigError(f"{model_dir}: not a sentence-transformers model folder the onnx backend can "
                          f"run ({exc}); use GRADER_EMBEDDING_BACKEND=sentence-transformers") from None
    mean_only = pool.get("pooling_mode_mean_tokens") and not any(
        v for k, v in pool.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens")
    if kinds[:2] != ["Transformer", "Pooling"] or set(kinds[2:]) - {"Normalize"} or not mean_only:
        raise ConfigError(f"{model_dir}: the onnx backend runs mean-pooled transformer models only "
                          f"(this one is {' + '.join(kinds)}); use GRADER_EMBEDDING_BACKEND=sentence-transformers")
    return max_len


def locate(model: str, store: Path | None = None) -> tuple[Path, Path, int]:
    """The model's folder, where its ONNX copy is (or will be) kept, and its token limit."""
    model_dir = Path(resolve_model_path(model))
    if not (model_dir / "modules.json").is_file():
        raise ConfigError(f"embedding model {model!r}: no sentence-transformers model folder at "
                          f"{model_dir} (the onnx backend runs local model folders)")
    max_tokens = read_layout(model_dir)
    return model_dir, (store or default_store()) / model_key(model, model_dir), max_tokens


def open_tokenizer(model_dir: Path, max_tokens: int):
    """The model's own tokenizer, truncating at its limit and padding nothing (run_model pads
    each batch to its longest text)."""
    from tokenizers import Tokenizer

    try:
        tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    except Exception as exc:  # noqa: BLE001 - many loader errors, one message
        raise ConfigError(f"cannot load the tokenizer of {model_dir}: {exc}") from exc
    tok.no_padding()
    tok.enable_truncation(max_tokens)
    return tok


def open_session(path: Path, threads: int):
    """An ONNX Runtime session on the CPU with pinned thread pools."""
    configure_threads(threads)
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads  # the thread pool that runs each operator
    opts.inter_op_num_threads = 1        # operators one at a time (sequential execution)
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    # Idle pool threads sleep instead of spinning: on a shared machine spinning takes the cores
    # other work (and the other thread of the pool) needs.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - many loader errors, one message
        raise ConfigError(f"cannot load {path}: {str(exc).splitlines()[0][:200]} "
                          f"(delete {path.parent} to make it again)") from exc


def run_model(session, tokenizer, texts: Sequence[str], batch_size: int, token_budget: int = TOKEN_BUDGET) -> np.ndarray:
    """Mean-pooled, L2-normalised vectors of the texts, in batches of like token length."""
    dim = session.get_outputs()[0].shape[-1]
    n = len(texts)
    out = np.zeros((n, dim), dtype=np.float32)
    if not n:
        return out
    encs = tokenizer.encode_batch(list(texts))
    lengths = np.array([len(e.ids) for e in encs])
    for idx in token_batches(lengths, batch_size, token_budget):
        width = int(lengths[idx].max())
        ids = np.zeros((len(idx), width), dtype=np.int64)
        mask = np.zeros((len(idx), width), dtype=np.int64)
        for row, i in enumerate(idx):
            k = int(lengths[i])
            ids[row, :k] = encs[i].ids
            mask[row, :k] = 1
        (tokens,) = session.run(None, {"input_ids": ids, "attention_mask": mask})
        m = mask[..., None].astype(np.float32)
        out[idx] = (tokens * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms == 0, 1, norms)


def token_batches(lengths: np.ndarray, batch_size: int, token_budget: int) -> list[np.ndarray]:
    """Indices in batches, longest texts first: at most batch_size texts and, past the first,
    at most token_budget padded tokens, so a batch's short texts are never padded far."""
    order = np.argsort(-lengths, kind="stable")
    batches, start = [], 0
    while start < len(order):
        width = int(lengths[order[start]])
        take = max(1, min(batch_size, token_budget // max(width, 1)))
        batches.append(order[start : start + take])
        start += take
    return batches
