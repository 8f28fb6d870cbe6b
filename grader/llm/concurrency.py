"""Asking for many reviews at once (the openai sync client is thread-safe)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed

from grader.llm.base import FeedbackProvider, LLMReview
from grader.models import GradeResult, Question, Rubric

ReviewItem = tuple[Question, Rubric | None, str, GradeResult]
# One request to make: who asks, about what, and the seed it carries (recorded if it fails).
ReviewJob = tuple[FeedbackProvider, ReviewItem, "int | None"]


def reviews_of(
    jobs: Sequence[ReviewJob],
    concurrency: int = 4,
    progress_callback: Callable[[int, int], None] | None = None,
) -> list[LLMReview]:
    """Each job's review, up to `concurrency` at a time, in input order; a provider that raises
    (breaking its promise never to) gives an error review.  `progress_callback(done, total)` is
    called after each, from the calling thread."""
    reviews: list[LLMReview | None] = [None] * len(jobs)
    total = len(jobs)
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="llm") as pool:
        futures = {pool.submit(provider.review, *item): i for i, (provider, item, _) in enumerate(jobs)}
        for done, fut in enumerate(as_completed(futures), 1):
            i = futures[fut]
            try:
                reviews[i] = fut.result()
            except Exception as exc:  # noqa: BLE001 - a provider that broke its promise
                provider, _, seed = jobs[i]
                reviews[i] = LLMReview(model=getattr(provider, "model", "?"), error=type(exc).__name__, seed=seed)
            if progress_callback:
                progress_callback(done, total)
    return reviews  # type: ignore[return-value]
