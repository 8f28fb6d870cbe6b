"""How an LLM review changes a deterministic GradeResult (bounded, grounded, injection-safe).

Let d be the deterministic fraction (score / max_score) and L the LLM fraction:

    L = weighted share of the rubric's concepts the LLM showed WITH a quote found in the
        answer (covered 1, partial 0.5; rubric weights), minus the deterministic
        misconception penalties, capped at 0.6 when a required concept is not verified,
        clamped to 0..1.  The LLM's own `suggested_score` is never used as the score.

    final = d + clamp(llm_weight * (L - d), -llm_max_shift, +llm_max_shift)

with llm_weight (GRADER_LLM_WEIGHT, default 0.3; `--llm-weight 0` = feedback only) and
llm_max_shift (GRADER_LLM_MAX_SHIFT, default 0.15 = 1.5 of 10 points).  Two exceptions:

* the answer looks like a prompt injection (grader's flags, an encoded payload, or the LLM
  says so): the shift is clamped to <= 0, the LLM can lower the score but never raise it;
* the LLM's suggested score exceeds what its own verified quotes support by more than 0.3
  (the signature of a model that obeyed an injection or invented its evidence): the review
  is not trusted at all, shift 0, and the feedback is marked.

Flags: "llm disagrees: human review" when |L - d| > 0.3; "llm score contradicts its quotes"
when |suggested - L| > 0.3; "llm error" when no valid reply came (score unchanged).
Without a rubric there is nothing to ground, so the review is feedback only.
"""

from __future__ import annotations

from dataclasses import dataclass

from grader.llm.base import LLMReview
from grader.llm.grounding import CREDIT
from grader.models import GradeResult, Rubric
from grader.scoring import flags as F
from grader.scoring.combine import band_for, capped, llm_shift

LLM_ERROR = "llm error"
LLM_DISAGREES = "llm disagrees: human review"
LLM_CONTRADICTS = "llm score contradicts its quotes"
LLM_SUSPECTS = "llm suspects prompt injection: human review"
DISAGREE = 0.3
CONTRADICTION = 0.3
INJECTION_NOTE = (
    "[Flagged: possible prompt injection or unsupported LLM verdicts; the LLM could not "
    "raise this score.] "
)


@dataclass(frozen=True)
class BlendParams:
    weight: float = 0.3
    max_shift: float = 0.15
    disagree: float = DISAGREE
    contradiction: float = CONTRADICTION

    @classmethod
    def from_settings(cls, settings, weight: float | None = None) -> "BlendParams":
        return cls(
            weight=settings.llm_weight if weight is None else weight,
            max_shift=settings.llm_max_shift,
        )


def _params(p) -> BlendParams:
    if p is None:
        from grader.config import get_settings

        return BlendParams.from_settings(get_settings())
    return p if isinstance(p, BlendParams) else BlendParams.from_settings(p)


def _clamp(x: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, x))


def llm_fraction(review: LLMReview, rubric: Rubric | None, result: GradeResult) -> float | None:
    """L of the module docstring; None when there is no rubric to ground against."""
    if not rubric or not rubric.concepts:
        return None
    status = {v["name"]: v["status"] for v in review.verdicts}
    total = sum(c.weight for c in rubric.concepts)
    frac = sum(c.weight * CREDIT[status.get(c.name, "missing")] for c in rubric.concepts) / total
    frac -= sum(m.penalty for m in result.misconceptions) / result.max_score
    missing = any(c.required and status.get(c.name, "missing") == "missing" for c in rubric.concepts)
    return _clamp(capped(frac, missing), 0.0, 1.0)


def usable_text(text: str) -> bool:
    """Whether an LLM phrase is words worth showing: some words of letters, not one word or
    phrase over and over, not markup or numbers ("1.0\nStrengths: 1.0; 1.0")."""
    import re

    words = re.findall(r"[^\W\d_]{2,}", text or "")
    if len(words) < 2:
        return False
    low = [w.lower() for w in words]
    if len(low) >= 6 and len(set(low)) / len(low) < 0.4:  # "good good good good good good"
        return False
    letters = sum(ch.isalpha() for ch in text)
    return letters >= 0.5 * len(text.strip())


def _items(items: list[str]) -> list[str]:
    out = []
    for s in items:
        s = s.strip()
        if usable_text(s) and s.lower() not in (x.lower() for x in out):
            out.append(s)
    return out


def _feedback(review: LLMReview, result: GradeResult, manipulated: bool) -> tuple[str | None, str | None]:
    """(feedback to show, why the LLM's was not used).  Empty, repetitive or malformed LLM text
    never replaces grader's own feedback."""
    r = review.reply
    main = r.feedback.strip()
    strengths, improvements = _items(r.strengths), _items(r.improvements)
    if review.mode == "checklist":  # it writes no feedback text
        return result.feedback, None
    if not usable_text(main):
        return result.feedback, "the LLM's feedback was empty, repetitive or malformed"
    parts = [main]
    if strengths:
        parts.append("Strengths: " + "; ".join(strengths))
    if improvements:
        parts.append("To improve: " + "; ".join(improvements))
    text = "\n".join(parts)
    return (INJECTION_NOTE + text) if manipulated else text, None


def apply_review(result: GradeResult, review: LLMReview, rubric: Rubric | None, params=None) -> GradeResult:
    """A new GradeResult with the review blended in (see the module docstring).

    `params` is a BlendParams, a Settings (llm_weight, llm_max_shift) or None (the
    process settings).
    """
    p = _params(params)
    flags = list(result.flags)
    info: dict = {
        "model": review.model,
        "error": None,
        "cached": review.cached,
        "requests": review.requests,
        "tokens": {"prompt": review.prompt_tokens, "completion": review.completion_tokens},
    }
    if review.injection and F.INJECTION not in flags:
        flags.append(F.INJECTION)
    if review.llm_suspects_injection and F.INJECTION not in flags and LLM_SUSPECTS not in flags:
        flags.append(LLM_SUSPECTS)  # its suspicion, not grader's finding: honest answers get it too
    if review.panel:
        info["panel"] = review.panel
        info["panel_disagrees"] = review.panel_disagrees
    if review.skipped:
        info["skipped"] = review.skipped
        return result.model_copy(update={"llm": info, "flags": flags})
    if review.error or review.reply is None:
        info["error"] = review.error or "no reply"
        if LLM_ERROR not in flags:
            flags.append(LLM_ERROR)
        return result.model_copy(update={"llm": info, "flags": flags})

    reply = review.reply
    points = result.max_score
    det = result.score / points if points else 0.0
    suggested = reply.suggested_fraction(points)
    frac = llm_fraction(review, rubric, result)
    contradicts = frac is not None and abs(suggested - frac) > p.contradiction
    # The LLM's own suspicion also keeps it from raising the score (it may have been talked into it).
    injected = review.injection or review.llm_suspects_injection or F.INJECTION in result.flags
    inflated = contradicts and suggested > frac
    manipulated = review.injection or F.INJECTION in result.flags or inflated
    shift = 0.0
    if frac is not None:
        shift = llm_shift(det, frac, p.weight, p.max_shift, injected=injected, inflated=inflated)
        if abs(frac - det) > p.disagree and LLM_DISAGREES not in flags:
            flags.append(LLM_DISAGREES)
    if contradicts and LLM_CONTRADICTS not in flags:
        flags.append(LLM_CONTRADICTS)
    if review.panel_disagrees:
        from grader.llm.panel import PANEL_DISAGREES

        if PANEL_DISAGREES not in flags:
            flags.append(PANEL_DISAGREES)
    score = result.score
    if shift:
        score = round(_clamp(det + shift, 0.0, 1.0) * points, 2)
    percent = round(100 * score / points, 1) if points else 0.0
    band = result.band if result.band == "no answer" else band_for(score / points if points else 0)
    info.update({
        "fraction": None if frac is None else round(frac, 4),
        "suggested": round(suggested, 4),
        "deterministic": round(det, 4),
        "shift": round((score - result.score) / points, 4) if points else 0.0,
        "weight": p.weight,
        "max_shift": p.max_shift,
        "manipulation_suspected": manipulated,
        "injection_suspected": reply.injection_suspected,
        "verdicts": review.verdicts,
        "unsupported_claims": review.unsupported,
        "unknown_concepts": review.unknown_concepts,
        "misconceptions": review.misconceptions,
        "strengths": _items(reply.strengths),
        "improvements": _items(reply.improvements),
        "repaired": review.repaired,
        "response_format": review.response_format,
        "mode": review.mode,
    })
    components = result.components.model_copy(
        update={"llm": None if frac is None else round(frac, 4)}
    )
    feedback, rejected = _feedback(review, result, manipulated)
    info["feedback_rejected"] = rejected
    return result.model_copy(update={
        "score": score, "percent": percent, "band": band, "flags": flags,
        "components": components, "feedback": feedback, "llm": info,
    })
