"""The rubric scorer: which of a question's concepts an answer shows, and which
misconceptions it states, each with the sentence that shows it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from grader.models import ConceptResult, MisconceptionResult, Signal
from grader.scoring import similarity as S
from grader.scoring.evidence import Evidence
from grader.scoring.keywords import Vocabulary, find_terms
from grader.scoring.prepare import MAX_SENTENCES, Prepared

NAME = "rubric"


def concept_credit(term_hit: bool, best_similarity: float) -> float:
    """A concept's credit: 1 when its terms are in the answer, else partial credit from the
    closest sentence's meaning (grader.scoring.similarity.concept_credit)."""
    return 1.0 if term_hit else S.concept_credit(round(float(best_similarity), 4))


def keyword_share(concepts: Sequence[ConceptResult]) -> float:
    """Weighted share of the rubric's concepts the answer showed."""
    total = sum(c.weight for c in concepts)
    if total <= 0:
        return 0.0
    return sum(c.weight * c.credit for c in concepts) / total


class RubricScorer:
    """Concepts by their terms or, partially, by meaning; misconceptions by their terms
    (a sentence stating a misconception is evidence for no concept)."""

    name = NAME

    def texts(self, p: Prepared) -> list[str]:
        """Sentences and concept descriptions, embedded by the grader's embedder."""
        if p.empty or p.item.rubric is None:
            return []
        return [s.text for s in p.sentences[:MAX_SENTENCES]] + [c.description for c in p.item.rubric.concepts]

    def score(self, answers: Sequence[Prepared], vectors: Mapping[str, np.ndarray]) -> list[Evidence]:
        """One Evidence per answer: the `keywords` signal, concept and misconception results."""
        return [self._one(p, vectors) for p in answers]

    def _one(self, p: Prepared, vec: Mapping[str, np.ndarray]) -> Evidence:
        rubric = p.item.rubric
        if rubric is None or p.empty:
            return Evidence()
        sents = p.sentences[:MAX_SENTENCES]
        svecs = np.stack([vec[s.text] for s in sents])
        cvecs = np.stack([vec[c.description] for c in rubric.concepts])
        best, which = S.concept_similarities(svecs, cvecs)
        vocab = Vocabulary(p.sentences)
        misconceptions: list[MisconceptionResult] = []
        for m in rubric.misconceptions:
            hit = find_terms(m.terms, p.sentences, claims=True, vocab=vocab)
            if hit:
                misconceptions.append(MisconceptionResult(
                    name=m.name, penalty=m.penalty, evidence=hit.sentence.text, why=m.why,
                ))
        # "PATCH replaces the whole resource" does not show what PUT does.
        wrong = {m.evidence for m in misconceptions}
        usable = [s for s in p.sentences if s.text not in wrong]
        concepts: list[ConceptResult] = []
        for i, c in enumerate(rubric.concepts):
            hit = find_terms(c.terms, usable, vocab=vocab)
            if hit:
                concepts.append(ConceptResult(
                    name=c.name, weight=c.weight, required=c.required, matched=True,
                    credit=concept_credit(True, 1.0), via="terms", evidence=hit.sentence.text,
                ))
                continue
            closest = sents[int(which[i])].text
            credit = concept_credit(False, best[i]) if closest not in wrong else 0.0
            matched = credit >= 0.5 * S.SEMANTIC_CONCEPT_MAX
            concepts.append(ConceptResult(
                name=c.name, weight=c.weight, required=c.required, matched=matched,
                credit=credit, via="semantic" if credit > 0 else "none",
                evidence=closest if credit > 0 else None, hint=None if matched else c.hint,
            ))
        shown = [c.name for c in concepts if c.matched]
        keywords = Signal(name="keywords", value=round(keyword_share(concepts), 4), scorer=NAME,
                          explanation=f"{len(shown)} of {len(concepts)} concepts shown"
                          + (f": {', '.join(shown)}" if shown else ""))
        return Evidence(signals=[keywords], concepts=concepts, misconceptions=misconceptions)
