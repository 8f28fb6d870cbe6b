"""LLM feedback through any OpenAI-compatible server: structured, retried, cached, grounded.

    provider = OpenAIFeedback.from_settings(settings)          # ConfigError if not set up
    review = provider.review(question, rubric, answer, result) # never raises for faults
    result = apply_review(result, review, rubric, settings)    # bounded, grounded blend

Modules: schema (reply model), prompt (delimited prompt), client (requests, retries,
repair, cache), grounding (quotes must be in the answer), relevance (and show the concept),
guard (decoded injections), blend (score rules), concurrency (many reviews at once), batch
(usage, dry run, the configured provider), checklist (one question per concept), panel (several judges, majority),
repeat (N asks, spread, pass^N, median), cache, scrub, options, local (the offline llama.cpp
server: the xllamacpp wheel or a source build).
"""

from grader.llm.base import FeedbackProvider, LLMReview, LLMUsage
from grader.llm.batch import dry_run_count, make_provider, make_reviewer, review_many
from grader.llm.blend import BlendParams, apply_review
from grader.llm.client import OpenAIFeedback
from grader.llm.schema import ReviewReply

__all__ = [
    "BlendParams", "FeedbackProvider", "LLMReview", "LLMUsage", "OpenAIFeedback",
    "ReviewReply", "apply_review", "dry_run_count", "make_provider", "make_reviewer", "review_many",
]
