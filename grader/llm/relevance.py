"""Relevance: a verified quote counts for a concept only when it supports that concept.

The bounded schema lets a small model quote only the answer's sentences, so "is the quote in
the answer" always holds; what it got wrong was *which* sentence: "PUT and PATCH are both
HTTP methods" quoted for "PATCH is a partial update", or a sentence stating a misconception
quoted as evidence.  A quote supports a concept when, by the pipeline's own evidence,

* it holds the sentence the deterministic scorer took as that concept's evidence (its
  terms in a firm clause about the concept's subject, or its meaning), or
* one of the concept's terms occurs in a firm clause of the quote, not denied, and not
  said of another subject of a comparison (the rubric scorer's own test, on the quote);

and it does not hold a sentence the pipeline found stating a misconception (stated,
swapped or denied).  Otherwise the claim is unsupported.  Rubrics made from a reference
answer (no deterministic concept results) are checked for presence only.
"""

from __future__ import annotations

from grader.models import Concept, GradeResult, Rubric
from grader.scoring.claims import clauses
from grader.scoring.keywords import find_in_sentence
from grader.scoring.rubric import concept_denied
from grader.text import analyse, clean, normalise

NOT_RELEVANT = "quote does not show this concept"
STATES_MISCONCEPTION = "quote states a misconception"


def _norm(text: str) -> str:
    return " ".join(normalise(clean(text or "")).split())


def _overlaps(quote: str, sentence: str | None) -> bool:
    if not sentence:
        return False
    q, s = _norm(quote), _norm(sentence)
    return bool(q and s) and (s in q or q in s)


def _terms_show(concept: Concept, quote: str, rubric: Rubric, question: str) -> bool:
    for clause in clauses(analyse(quote), rubric.subjects, question):
        if not clause.firm:
            continue
        if concept.subject is not None and clause.subject is not None and clause.subject != concept.subject:
            continue
        for term in concept.terms:
            hit = find_in_sentence(term, clause.part)
            if hit is not None and not concept_denied(hit, concept):
                return True
    return False


def checkable(rubric: Rubric | None, result: GradeResult | None) -> bool:
    """Whether the deterministic result holds this rubric's concept evidence to check against."""
    if rubric is None or result is None or not rubric.concepts:
        return False
    return {c.name for c in result.concepts} == {c.name for c in rubric.concepts}


def unsupported_reason(concept: Concept, quote: str, rubric: Rubric, result: GradeResult) -> str | None:
    """None when `quote` supports `concept` (see the module docstring), else why not."""
    if any(_overlaps(quote, m.evidence) for m in result.misconceptions):
        return STATES_MISCONCEPTION
    own = next((c for c in result.concepts if c.name == concept.name), None)
    if own is not None and own.credit > 0 and _overlaps(quote, own.evidence):
        return None
    return None if _terms_show(concept, quote, rubric, result.question) else NOT_RELEVANT
