"""The default backend: a sentence-transformers model (the packaged all-MiniLM-L6-v2), offline."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from grader.embedding.base import (
    PACKAGED_MODEL, configure_threads, longest_first, offline_transformers, resolve_model_path,
)
from grader.errors import ConfigError


# Loaded models by path: a process loads each model once, however many embedders it makes.
_MODELS: dict[str, object] = {}
_MODELS_LOCK = threading.Lock()


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded once per process on first use, offline."""

    counts_tokens = True
    has_terms = False

    def __init__(self, model: str = PACKAGED_MODEL, *, threads: int = 2, batch_size: int = 64):
        self.name = model
        self.threads = threads
        self.batch_size = batch_size
        self._model = None

    def _load(self):
        with _MODELS_LOCK:
            if self._model is None and self.name in _MODELS:
                self._model = _MODELS[self.name]
            if self._model is None:
                configure_threads(self.threads)
                offline_transformers()
                import torch
                from sentence_transformers import SentenceTransformer

                torch.set_num_threads(self.threads)
                path = resolve_model_path(self.name)
                try:
                    self._model = SentenceTransformer(path, device="cpu")
                except Exception as exc:  # noqa: BLE001 - many loader errors, one message
                    raise ConfigError(
                        f"cannot load embedding model {self.name!r}: "
                        f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                    ) from exc
                _MODELS[self.name] = self._model
        return self._model

    def lengths(self, texts: Sequence[str]) -> list[int]:
        """Each text's length in the model's tokens (after truncation)."""
        model = self._load()
        if not texts:
            return []
        ids = model.tokenizer(list(texts), truncation=True, max_length=model.max_seq_length)["input_ids"]
        return [len(x) for x in ids]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        model = self._load()
        # Renamed in sentence-transformers 5; the old name warns there.
        dim = (getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension)()
        out = np.zeros((len(texts), dim), dtype=np.float32)
        # Batches of like token counts: encode() groups by characters, which padded 15% more
        # tokens than this on the bench's answers (code and symbols are short in characters
        # and long in tokens), so each batch goes to encode() on its own, in token order.
        order = longest_first(self.lengths(texts))
        for i in range(0, len(order), self.batch_size):
            idx = order[i : i + self.batch_size]
            out[idx] = model.encode(
                [texts[j] for j in idx],
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return out
