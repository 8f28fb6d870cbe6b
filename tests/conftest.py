"""Shared fixtures: the real bank, the real packaged model, isolated caches and reports."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session", autouse=True)
def _isolated_env(tmp_path_factory):
    """Caches and reports go to a temporary folder; no .env or API key leaks in."""
    base = tmp_path_factory.mktemp("grader-env")
    os.environ["GRADER_CACHE_DIR"] = str(base / "cache")
    os.environ["GRADER_REPORTS_DIR"] = str(base / "reports")
    # Two cores: with two test workers (pytest-xdist, `make test`) each gets one thread, as
    # more threads than cores made torch many times slower here.
    os.environ["GRADER_THREADS"] = "1" if os.environ.get("PYTEST_XDIST_WORKER") else "2"
    for k in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "GRADER_LLM_MODEL", "GRADER_CALIBRATION",
              "GRADER_TRAINED_MODEL", "GRADER_SECOND_EMBEDDING", "GRADER_EMBEDDING_BACKEND"):
        os.environ.pop(k, None)
    from grader.config import get_settings

    get_settings.cache_clear()
    yield base


@pytest.fixture(scope="session")
def settings(_isolated_env):
    from grader.config import get_settings

    return get_settings()


@pytest.fixture(scope="session")
def bank(settings):
    from grader.bank import load_bank

    return load_bank(settings.questions, settings.rubrics_dir)


@pytest.fixture(scope="session")
def grader_(settings):
    """A real Grader with the packaged MiniLM model."""
    from grader.scoring import grader_from_settings

    return grader_from_settings(settings)


def grader_cmd() -> list[str]:
    """The installed console script, run as a real process."""
    exe = Path(sys.executable).parent / "grader"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "grader.cli"]
