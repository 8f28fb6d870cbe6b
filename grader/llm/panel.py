"""A panel of judges (GRADER_LLM_PANEL): several servers/models review each answer; each
concept's verdict is the majority of their grounded verdicts, and any disagreement between
judges is a flag for human review.

    GRADER_LLM_PANEL='[{"base_url": "http://127.0.0.1:8088/v1", "model": "smollm2-135m-instruct"},
                       {"base_url": "https://api.openai.com/v1", "model": "gpt-4o-mini",
                        "api_key_env": "JUDGE2_KEY"}]'

Each judge is a full provider (review or checklist, per GRADER_LLM_MODE) with its own key,
read from the environment variable it names (never from the panel setting itself, never
shown: each judge scrubs its own key from its errors), its own cache entries, retries and
usage.  Votes are taken AFTER grounding, so an unverified or irrelevant claim votes
"missing".  A tie goes to the lower credit.  Judges that fail are left out of the vote; when
none answers, the answer keeps its deterministic score.  The panel's suggested score is the
median of its judges'; its feedback is that of the first judge that gave a valid reply.
"""

from __future__ import annotations

import os
import statistics

from grader.errors import ConfigError
from grader.llm.base import FeedbackProvider, LLMReview
from grader.llm.concurrency import reviews_of
from grader.llm.grounding import CREDIT
from grader.llm.options import JudgeSpec
from grader.llm.guard import looks_hostile
from grader.llm.prompt import answer_text
from grader.llm.schema import ReviewReply
from grader.models import GradeResult, Question, Rubric

PANEL_DISAGREES = "llm judges disagree: human review"


def judges_from_settings(settings, specs: list[JudgeSpec], *, use_cache: bool, options) -> list[FeedbackProvider]:
    """One provider per judge; ConfigError naming a judge whose key variable is unset."""
    from grader.llm.batch import provider_for

    out = []
    for i, spec in enumerate(specs, 1):
        key = None
        if spec.api_key_env:
            key = os.environ.get(spec.api_key_env)
            if not key:
                raise ConfigError(f"GRADER_LLM_PANEL: judge {i} ({spec.model}) names {spec.api_key_env}, which is not set")
        if not spec.base_url and not key:
            raise ConfigError(f"GRADER_LLM_PANEL: judge {i} ({spec.model}) needs a base_url or an api_key_env")
        from pydantic import SecretStr

        s = settings.model_copy(update={"openai_base_url": spec.base_url, "llm_model": spec.model,
                                        "openai_api_key": SecretStr(key) if key else None})
        out.append(provider_for(s, use_cache=use_cache, options=options))
    return out


def majority(statuses: list[str]) -> str:
    """The most common status; a tie goes to the lower credit."""
    counts = {s: statuses.count(s) for s in set(statuses)}
    return max(counts, key=lambda s: (counts[s], -CREDIT[s]))


class PanelFeedback:
    """A FeedbackProvider whose verdicts are the majority of several judges' (see the module)."""

    def __init__(self, judges: list[FeedbackProvider]):
        if len(judges) < 2:
            raise ConfigError("GRADER_LLM_PANEL: name at least two judges")
        self.judges = judges
        self.model = "panel(" + ", ".join(j.model for j in judges) + ")"

    def __repr__(self) -> str:
        return f"PanelFeedback({self.judges!r})"

    def reseeded(self, seed: int) -> "PanelFeedback":
        """Every judge asking with another seed and no cache (`--repeat`)."""
        return PanelFeedback([j.reseeded(seed) for j in self.judges])

    def is_cached(self, question: Question, rubric: Rubric | None, answer: str) -> bool:
        return all(j.is_cached(question, rubric, answer) for j in self.judges)

    def requests_needed(self, question: Question, rubric: Rubric | None, answer: str) -> int:
        """The judges' requests together (`--dry-run`)."""
        return sum(j.requests_needed(question, rubric, answer) for j in self.judges)

    def review(self, question: Question, rubric: Rubric | None, answer: str, result: GradeResult) -> LLMReview:
        """Every judge's review, then the majority; never raises for a judge's fault."""
        item = (question, rubric, answer, result)
        reviews = reviews_of([(judge, item, None) for judge in self.judges], concurrency=len(self.judges))
        return combine_reviews(self.model, reviews, rubric, answer)


def combine_reviews(model: str, reviews: list[LLMReview], rubric: Rubric | None, answer: str) -> LLMReview:
    """One review from the judges' reviews: majority verdicts, summed usage, each judge's own record."""
    per_judge = [{"model": r.model, "requests": r.requests, "prompt_tokens": r.prompt_tokens,
                  "completion_tokens": r.completion_tokens, "cached": r.cached, "error": r.error,
                  "repaired": r.repaired, "invalid": r.invalid,
                  "verdicts": {v["name"]: v["status"] for v in r.verdicts}} for r in reviews]
    usage = dict(requests=sum(r.requests for r in reviews), prompt_tokens=sum(r.prompt_tokens for r in reviews),
                 completion_tokens=sum(r.completion_tokens for r in reviews),
                 repaired=any(r.repaired for r in reviews), invalid=all(r.invalid for r in reviews),
                 cached=all(r.cached for r in reviews))
    base = dict(model=model, injection=looks_hostile(answer_text(answer)), panel=per_judge, mode=reviews[0].mode)
    if all(r.skipped for r in reviews):
        return LLMReview(**base, skipped=reviews[0].skipped)
    valid = [r for r in reviews if r.ok]
    if not valid:
        errors = "; ".join(f"{r.model}: {r.error}" for r in reviews if r.error)
        return LLMReview(**base, error=f"no judge answered ({errors})"[:600], **usage)
    verdicts, disagree = [], False
    for c in (rubric.concepts if rubric else []):
        votes = [next((v for v in r.verdicts if v["name"] == c.name), None) for r in valid]
        statuses = [v["status"] if v else "missing" for v in votes]
        status = majority(statuses)
        disagree |= len(set(statuses)) > 1
        pick = next((v for v in votes if v and v["status"] == status), None)
        verdicts.append({"name": c.name, "claimed": status, "status": status,
                         "quote": pick["quote"] if pick else "", "verified": True, "votes": statuses})
    first = valid[0].reply
    reply = ReviewReply.model_construct(
        concepts=first.concepts, misconceptions=first.misconceptions,
        suggested_score=statistics.median(r.reply.suggested_score for r in valid),
        strengths=first.strengths, improvements=first.improvements, feedback=first.feedback,
        injection_suspected=any(r.reply.injection_suspected for r in valid),
    )
    return LLMReview(
        **base, reply=reply, verdicts=verdicts, llm_suspects_injection=reply.injection_suspected,
        unsupported=[u | {"judge": r.model} for r in valid for u in r.unsupported],
        unknown_concepts=sorted({u for r in valid for u in r.unknown_concepts}),
        misconceptions=[m | {"judge": r.model} for r in valid for m in r.misconceptions],
        panel_disagrees=disagree, response_format=valid[0].response_format, **usage,
    )
