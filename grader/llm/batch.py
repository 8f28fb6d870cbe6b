"""Reviewing and blending many answers; choosing the configured provider."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from grader.llm.base import FeedbackProvider, LLMUsage
from grader.llm.blend import apply_review
from grader.llm.concurrency import ReviewItem, reviews_of
from grader.llm.prompt import answer_text
from grader.models import GradeResult, Question, Rubric


def _needs_request(item: ReviewItem) -> bool:
    _, _, answer, result = item
    return result.band != "no answer" and bool(answer_text(answer).strip())


def dry_run_count(items: Sequence[ReviewItem], provider: FeedbackProvider) -> int:
    """How many requests the reviews would make (answers not empty; replies not in the cache;
    a checklist asks one question per concept and misconception).  Repairs and retries aside."""
    return sum(provider.requests_needed(q, r, a) for q, r, a, res in items if _needs_request((q, r, a, res)))


def review_many(
    items: Sequence[ReviewItem],
    provider: FeedbackProvider,
    concurrency: int = 4,
    progress_callback: Callable[[int, int], None] | None = None,
    params=None,
) -> tuple[list[GradeResult], LLMUsage]:
    """Review and blend every item, up to `concurrency` requests at a time, in input order.

    Never raises for LLM faults: a failed review leaves that answer's deterministic score
    with an "llm error" flag.  `params` as in `apply_review` (None: the process settings).
    `progress_callback(done, total)` is called after each item, from the calling thread.
    """
    items = list(items)
    reviews = reviews_of([(provider, item, None) for item in items], concurrency, progress_callback)
    usage = LLMUsage()
    out = []
    for (q, r, a, res), rev in zip(items, reviews):
        usage.add(rev)
        out.append(apply_review(res, rev, r, params))
    return out, usage


def make_provider(settings, *, use_cache: bool = True):
    """The configured provider: one review per answer or a checklist (GRADER_LLM_MODE), by one
    judge or a panel (GRADER_LLM_PANEL).  ConfigError naming the missing setting."""
    from grader.llm.options import load_options

    options = load_options()
    if options.llm_panel:
        from grader.llm.panel import PanelFeedback, judges_from_settings

        return PanelFeedback(judges_from_settings(settings, options.llm_panel, use_cache=use_cache, options=options))
    return provider_for(settings, use_cache=use_cache, options=options)


def provider_for(settings, *, use_cache: bool, options):
    """One judge: the server and model of `settings`, in `options.llm_mode`."""
    from grader.llm.client import OpenAIFeedback

    if options.llm_mode == "checklist":
        from grader.llm.checklist import ChecklistFeedback

        return ChecklistFeedback.from_settings(settings, use_cache=use_cache, options=options)
    return OpenAIFeedback.from_settings(settings, use_cache=use_cache, options=options)


def make_reviewer(settings, *, weight: float | None = None, use_cache: bool = True, repeat: int = 1):
    """A function (question, rubric, answer, result) -> result with the LLM review applied.

    Raises ConfigError at once when the LLM is not configured, before anything is graded.
    With `repeat` > 1 it asks that many times (seeds varied, cache bypassed) and keeps the
    median review (grader.llm.repeat); the result's `llm.repeat` shows the spread.
    Used by `grade --llm` and `ask --llm`.
    """
    from grader.llm.blend import BlendParams
    from grader.llm.options import LLMOptions
    from grader.llm.repeat import review_repeated

    if repeat < 1:
        from grader.errors import InputError

        raise InputError(f"--repeat: {repeat}; at least 1")
    provider = make_provider(settings, use_cache=use_cache and repeat == 1)
    params = BlendParams.from_settings(settings, weight)
    seed = LLMOptions().llm_seed

    def review(question: Question, rubric: Rubric | None, answer: str, result: GradeResult) -> GradeResult:
        if repeat > 1:
            out, _, _ = review_repeated([(question, rubric, answer, result)], provider, repeat,
                                        concurrency=settings.llm_concurrency, params=params, base_seed=seed)
            return out[0]
        return apply_review(result, provider.review(question, rubric, answer, result), rubric, params)

    review.provider = provider  # type: ignore[attr-defined]
    return review
