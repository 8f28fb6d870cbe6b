"""The default backend: the sentence-transformers model's own weights, run by ONNX Runtime.

The ONNX copy (grader.embedding.onnx_model) is made once, at set-up or on first use; it is checked
against sentence-transformers when made (cosine >= MIN_COSINE on every check text), which is why
this backend shares the torch backend's name and so its cached vectors.

`onnxruntime` and `tokenizers` are imported only when the model is first used, so `grader --help`
never pays for them, and torch is never imported once the copy exists.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from grader.embedding.base import PACKAGED_MODEL
from grader.embedding.onnx_model import META_FILE, ONNX_FILE, locate, open_session, open_tokenizer, run_model

# Loaded (session, tokenizer) pairs by (copy folder, threads): loaded once per process.
_SESSIONS: dict[tuple[str, int], object] = {}
_TOKENIZERS: dict[str, object] = {}
_LOCK = threading.Lock()


class OnnxEmbedder:
    """The `Embedder` protocol over ONNX Runtime on the CPU, with pinned thread pools."""

    counts_tokens = True
    has_terms = False

    def __init__(self, model: str = PACKAGED_MODEL, *, threads: int = 2, batch_size: int = 64,
                 store: Path | None = None):
        self.name = model  # the same vectors as sentence-transformers' (checked at export)
        self.model_dir, self.copy_dir, self.max_tokens = locate(model, store)
        self.threads = threads
        self.batch_size = batch_size

    def __repr__(self) -> str:
        return f"OnnxEmbedder({self.name!r}, threads={self.threads}, batch_size={self.batch_size})"

    @classmethod
    def from_settings(cls, settings) -> "OnnxEmbedder":
        return cls(settings.embedding_model, threads=settings.thread_count(),
                   batch_size=settings.embedding_batch_size, store=settings.onnx_dir)

    def _tokenizer(self):
        key = str(self.model_dir)
        with _LOCK:
            if key not in _TOKENIZERS:
                _TOKENIZERS[key] = open_tokenizer(self.model_dir, self.max_tokens)
            return _TOKENIZERS[key]

    def _session(self):
        key = (str(self.copy_dir), self.threads)
        with _LOCK:
            if key not in _SESSIONS:
                if not (self.copy_dir / META_FILE).is_file():
                    from grader.embedding.onnx_export import export

                    print(f"grader: making the ONNX copy of {self.name} (once, about 15 s) in {self.copy_dir.parent}",
                          file=sys.stderr)
                    export(self.name, self.model_dir, self.copy_dir, threads=self.threads)
                _SESSIONS[key] = open_session(self.copy_dir / ONNX_FILE, self.threads)
            return _SESSIONS[key]

    def lengths(self, texts: Sequence[str]) -> list[int]:
        """Each text's length in the model's tokens (after truncation)."""
        return [len(e.ids) for e in self._tokenizer().encode_batch(list(texts))] if texts else []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        tokenizer = self._tokenizer()
        session = self._session()
        return run_model(session, tokenizer, texts, self.batch_size)


