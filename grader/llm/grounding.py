"""Grounding: an LLM claim counts only when its quote is really in the candidate's answer."""

from __future__ import annotations

import re
from dataclasses import dataclass

from grader.models import GradeResult, Rubric
from grader.llm.schema import ReviewReply
from grader.text import clean, normalise, tokens

CREDIT = {"covered": 1.0, "partial": 0.5, "missing": 0.0}
_ELLIPSIS = re.compile(r"\s*(?:\.\.\.|…|\[\.\.\.\])\s*")
_EDGE = " \t\n\"'“”‘’`«»"


def _norm(text: str) -> str:
    return " ".join(normalise(clean(text)).split())


def _in_order(parts: list[str], haystack: str) -> bool:
    pos = 0
    for p in parts:
        i = haystack.find(p, pos)
        if i < 0:
            return False
        pos = i + len(p)
    return True


def _token_runs_in_order(parts: list[str], answer_tokens: list[str]) -> bool:
    """Each part's words occur consecutively in the answer's words, parts in order."""
    pos = 0
    for part in parts:
        q = tokens(part)
        if not q:
            continue
        n = len(q)
        for i in range(pos, len(answer_tokens) - n + 1):
            if answer_tokens[i : i + n] == q:
                pos = i + n
                break
        else:
            return False
    return True


def quote_in_answer(quote: str, answer: str) -> bool:
    """Whether `quote` occurs in `answer` once whitespace and case are normalised.

    Surrounding quotation marks are ignored, and an ellipsis may join spans that occur in
    order.  A span that differs only in punctuation ("O(log n)" vs "O(log n).") also
    counts: each span's words must then appear consecutively in the answer's words.  A
    quote needs at least one word of two or more letters or digits.
    """
    q = (quote or "").strip(_EDGE)
    if not any(len(t) >= 2 for t in tokens(q)):
        return False
    parts = [p.strip(_EDGE) for p in _ELLIPSIS.split(q)]
    parts = [p for p in parts if p]
    a = _norm(answer)
    if _in_order([_norm(p) for p in parts], a):
        return True
    return _token_runs_in_order(parts, tokens(answer))


@dataclass
class Grounded:
    """The LLM's verdicts after checking its quotes against the answer."""

    verdicts: list[dict]  # one per rubric concept: name, claimed, status, quote, verified
    unsupported: list[dict]  # claims whose quote is not in the answer
    unknown: list[str]  # concept names the LLM invented
    misconceptions: list[dict]  # claim, quote, verified

    def status(self, name: str) -> str:
        for v in self.verdicts:
            if v["name"] == name:
                return v["status"]
        return "missing"


def ground(reply: ReviewReply, rubric: Rubric | None, answer: str, result: GradeResult | None = None) -> Grounded:
    """Keep a covered/partial verdict only when its quote occurs in the answer and, given the
    deterministic `result`, supports that concept (grader.llm.relevance)."""
    from grader.llm.relevance import checkable, unsupported_reason

    check = checkable(rubric, result)
    concepts = {c.name: c for c in (rubric.concepts if rubric else [])}
    by_name: dict[str, object] = {}
    unknown: list[str] = []
    names = {c.name.strip().lower(): c.name for c in (rubric.concepts if rubric else [])}
    for v in reply.concepts:
        key = v.name.strip().lower()
        if key not in names:
            unknown.append(v.name[:120])
        elif key not in by_name:  # the first verdict on a concept counts
            by_name[key] = v
    verdicts, unsupported = [], []
    for key, name in names.items():
        v = by_name.get(key)
        claimed = v.status if v else "missing"
        quote = (v.quote if v else "")[:500]
        reason = None
        if claimed != "missing":
            if not quote.strip():
                reason = "no quote"
            elif not quote_in_answer(quote, answer):
                reason = "quote not in the answer"
            elif check:
                reason = unsupported_reason(concepts[name], quote, rubric, result)
        ok = reason is None
        if not ok:
            unsupported.append({"concept": name, "claimed": claimed, "quote": quote, "reason": reason})
        verdicts.append({
            "name": name, "claimed": claimed, "status": claimed if ok else "missing",
            "quote": quote if ok and claimed != "missing" else "", "verified": ok,
        })
    misc = [
        {"claim": m.claim[:300], "quote": m.quote[:500], "verified": quote_in_answer(m.quote, answer)}
        for m in reply.misconceptions
    ]
    return Grounded(verdicts, unsupported, unknown, misc)


def concept_fraction(grounded: Grounded, rubric: Rubric) -> float:
    """Weighted share of the rubric the verified verdicts give (covered 1, partial 0.5)."""
    total = sum(c.weight for c in rubric.concepts)
    if total <= 0:
        return 0.0
    got = sum(c.weight * CREDIT[grounded.status(c.name)] for c in rubric.concepts)
    return got / total
