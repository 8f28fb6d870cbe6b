"""Options shared by grade, ask and batch, defined once."""

from pathlib import Path
from typing import Annotated, Optional

import typer

Llm = Annotated[bool, typer.Option("--llm", help="Also get feedback from an LLM (needs GRADER_LLM_MODEL, and OPENAI_API_KEY or OPENAI_BASE_URL for a local server).")]
LlmWeight = Annotated[Optional[float], typer.Option(
    "--llm-weight", min=0.0, max=1.0, metavar="WEIGHT",
    help="How far the LLM's verdict moves the score (0: feedback only; default GRADER_LLM_WEIGHT).",
)]
Repeat = Annotated[int, typer.Option(
    "--repeat", min=1, metavar="N",
    help="With --llm: ask N times (seeds varied, cache bypassed), show each answer's spread and pass^N "
    "(same band all N times); the score uses the median review.",
)]
NoCache = Annotated[bool, typer.Option("--no-cache", help="Ask the LLM again even if its reply is cached.")]
Calibration = Annotated[Optional[Path], typer.Option(
    "--calibration", metavar="FILE", help="Score with a calibration fitted on human grades (grader calibrate).",
)]
Model = Annotated[Optional[Path], typer.Option(
    "--model", metavar="DIR",
    help="Also score with a model from `grader train` (its calibration.json combines it; default GRADER_TRAINED_MODEL).",
)]

Graded = Annotated[Optional[Path], typer.Option(
    "--graded", metavar="FILE",
    help="Learn from human-graded answers to the same questions (JSONL, as for evaluate; default GRADER_GRADED).",
)]


def llm_reviewer(weight: Optional[float], no_cache: bool, repeat: int = 1):
    """`--llm`: the reviewer, or a one-line ConfigError naming the missing setting."""
    from grader.cli.context import settings
    from grader.llm import make_reviewer

    return make_reviewer(settings(), weight=weight, use_cache=not no_cache, repeat=repeat)
