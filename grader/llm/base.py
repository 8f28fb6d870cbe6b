"""What a feedback provider returns, the provider protocol, and token accounting."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pydantic import BaseModel, Field

from grader.llm.schema import ReviewReply
from grader.models import GradeResult, Question, Rubric


class LLMReview(BaseModel):
    """One LLM review of one answer: the validated reply with its quotes checked, or an error.

    `review()` never raises for network or protocol faults: they end up in `error`.
    """

    model: str
    reply: ReviewReply | None = None
    error: str | None = Field(default=None, description="Why there is no reply (API key scrubbed).")
    skipped: str | None = Field(default=None, description="Why no request was made (e.g. no answer).")
    injection: bool = Field(
        default=False,
        description="grader's own checks find an injection (its patterns, also in decoded layers).",
    )
    llm_suspects_injection: bool = Field(
        default=False, description="The LLM said the answer addresses it: its suspicion, flagged apart.",
    )
    verdicts: list[dict] = Field(default_factory=list, description="Per concept, after grounding.")
    unsupported: list[dict] = Field(default_factory=list, description="Claims without a real quote.")
    unknown_concepts: list[str] = Field(default_factory=list)
    misconceptions: list[dict] = Field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    requests: int = Field(default=0, description="HTTP requests made, retries and repair included.")
    repaired: bool = False
    invalid: bool = Field(default=False, description="No valid reply even after the repair request.")
    seed: int | None = Field(default=None, description="The sampling seed the request carried.")
    mode: str = Field(default="review", description="review (one request) or checklist (one per question).")
    panel: list[dict] = Field(default_factory=list, description="A panel's judges: each one's usage, error and verdicts.")
    panel_disagrees: bool = Field(default=False, description="A panel's judges did not all give the same verdicts.")
    response_format: str | None = Field(default=None, description="json_schema, json_object or text.")

    @property
    def ok(self) -> bool:
        return self.reply is not None


@runtime_checkable
class FeedbackProvider(Protocol):
    """Anything that can review an already graded answer."""

    def review(
        self, question: Question, rubric: Rubric | None, answer: str, result: GradeResult
    ) -> LLMReview: ...

    def requests_needed(self, question: Question, rubric: Rubric | None, answer: str) -> int:
        """Requests a review of this answer would make now (0 when cached; `--dry-run`)."""
        ...


class LLMUsage(BaseModel):
    """Totals over a batch; replies served from the cache are counted apart."""

    requests: int = 0
    reviewed: int = 0
    cached: int = 0
    errors: int = 0
    skipped: int = 0
    repaired: int = Field(default=0, description="Reviews whose first reply failed validation (one repair sent).")
    invalid: int = Field(default=0, description="Reviews with no valid reply even after the repair.")
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, r: LLMReview) -> None:
        self.requests += r.requests
        self.repaired += r.repaired
        self.invalid += r.invalid
        if r.skipped:
            self.skipped += 1
        elif r.error:
            self.errors += 1
        elif r.cached:
            self.cached += 1
        else:
            self.reviewed += 1
        if not r.cached:
            self.prompt_tokens += r.prompt_tokens
            self.completion_tokens += r.completion_tokens

    def summary(self) -> str:
        return (
            f"LLM: {self.reviewed} reviewed, {self.cached} from cache, {self.errors} failed "
            f"({self.invalid} invalid after a repair; {self.repaired} repaired); "
            f"{self.requests} requests, {self.prompt_tokens} prompt + "
            f"{self.completion_tokens} completion tokens"
        )
