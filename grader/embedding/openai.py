"""Embeddings from an OpenAI-compatible `/v1/embeddings` endpoint (OpenAI, vLLM, TEI, Ollama)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from grader.errors import ConfigError


class OpenAIEmbedder:
    """The `Embedder` protocol over `/v1/embeddings`; vectors are L2-normalised here."""

    counts_tokens = False
    has_terms = False

    def __init__(self, client, model: str, batch_size: int = 64):
        self._client = client
        self.model = model
        self.name = f"openai:{model}"
        self.batch_size = batch_size

    def __repr__(self) -> str:  # never the client (it holds the key)
        return f"OpenAIEmbedder({self.model!r})"

    @classmethod
    def from_settings(cls, settings) -> "OpenAIEmbedder":
        import openai

        base_url = settings.embedding_base_url or settings.openai_base_url
        if not base_url and not settings.openai_api_key:
            raise ConfigError("GRADER_EMBEDDING_BACKEND=openai needs GRADER_EMBEDDING_BASE_URL "
                              "(or OPENAI_BASE_URL) or OPENAI_API_KEY")
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "not-needed"
        # The client's own retries back off exponentially and honour Retry-After.
        client = openai.OpenAI(api_key=key, base_url=base_url, timeout=settings.llm_timeout,
                               max_retries=settings.llm_retries)
        return cls(client, settings.embedding_model, settings.embedding_batch_size)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import openai

        out: list[list[float]] = []
        for i in range(0, len(texts), self.batch_size):
            part = list(texts[i : i + self.batch_size])
            try:
                resp = self._client.embeddings.create(model=self.model, input=part)
            except openai.APIError as exc:
                # The message of an API error never carries the key; the request does not echo it.
                raise ConfigError(f"embeddings endpoint failed: {type(exc).__name__}: "
                                  f"{str(exc).splitlines()[0][:200]}") from None
            rows = sorted(resp.data, key=lambda d: d.index)
            if len(rows) != len(part):
                raise ConfigError(f"embeddings endpoint returned {len(rows)} vectors for {len(part)} texts")
            out += [r.embedding for r in rows]
        if not out:
            return np.zeros((0, 0), dtype=np.float32)
        arr = np.asarray(out, dtype=np.float32)
        norms = np.linalg.norm(arr, axis=1, keepdims=True)
        return arr / np.where(norms == 0, 1, norms)
