"""An on-disk cache in front of any embedder: SQLite (WAL), keyed by model name and text."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from grader.embedding.base import Embedder, SparseVector, text_lengths


class CachedEmbedder:
    """Wraps an embedder with a SQLite cache keyed by model name and text; an inner
    embedder's sparse `terms` are cached too (a table of their own)."""

    def __init__(self, inner: Embedder, path: Path):
        self.inner = inner
        self.name = inner.name
        # Lengths of texts not cached come from the inner embedder (characters if it has none).
        self.counts_tokens = True
        self.has_terms = inner.has_terms
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, vec BLOB)")
        self._db.execute("CREATE TABLE IF NOT EXISTS terms (key TEXT PRIMARY KEY, idx BLOB, val BLOB)")
        self._db.commit()
        self._lock = threading.Lock()

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
            return self.inner.embed([])
        return np.stack([found[k] for k in keys])

    def terms(self, texts: Sequence[str]) -> list[SparseVector]:
        """The inner embedder's sparse terms (has_terms), cached like the vectors."""
        if not self.has_terms:
            raise TypeError(f"{self.name} has no latent terms")
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
