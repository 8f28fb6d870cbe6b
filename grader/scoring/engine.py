"""The grading engine: one answer or many, rubric and embedding signals together."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from grader.embedding import Embedder
from grader.models import ConceptResult, GradeResult, MisconceptionResult, Question, Rubric, Weights
from grader.scoring import flags as F
from grader.scoring import semantic as S
from grader.scoring.combine import combine, no_answer
from grader.scoring.keywords import find_terms
from grader.scoring.text import Sentence, analyse, clean

# Interview answers are a few paragraphs; beyond this, text is not read (and is flagged),
# so a megabyte of padding costs no more than a long answer.
MAX_ANSWER_CHARS = 20_000
# Sentences beyond this many are not embedded one by one.
MAX_SENTENCES = 64


@dataclass(frozen=True)
class Item:
    """One answer to grade: the question, its rubric (None: reference answer only), the text."""

    question: Question
    rubric: Rubric | None
    answer: str


@dataclass
class _Prepared:
    item: Item
    text: str
    sentences: list[Sentence]
    flags: list[str]


class Grader:
    """Scores answers deterministically against rubrics and model answers."""

    def __init__(self, embedder: Embedder, weights: Weights | None = None, calibration=None):
        self.embedder = embedder
        self.weights = weights or Weights()
        # Opt-in (--calibration / GRADER_CALIBRATION): scores re-made from signals fitted
        # on human grades; without it, the documented rubric combination.
        self.calibration = calibration

    def grade(self, question: Question, rubric: Rubric | None, answer: str) -> GradeResult:
        """Score one answer."""
        return self.grade_many([Item(question, rubric, answer)])[0]

    def grade_many(self, items: Sequence[Item], *, with_answer_vectors: bool = False):
        """Score many answers, embedding every distinct text once.

        With `with_answer_vectors`, also returns each whole answer's vector (None if empty).
        """
        prepared = [self._prepare(it) for it in items]
        texts = list(dict.fromkeys(t for p in prepared for t in self._texts(p)))
        vectors = self._embed(texts)
        results = [self._score(p, vectors) for p in prepared]
        if self.calibration is not None:
            from grader.calibration import apply_to_results

            results = apply_to_results(self.calibration, list(items), results, self.embedder)
        if not with_answer_vectors:
            return results
        answer_vecs = [vectors.get(clean(p.text)) if p.sentences else None for p in prepared]
        return results, answer_vecs

    def answer_vectors(self, answers: Sequence[str]) -> list[np.ndarray | None]:
        """Whole-answer vectors as grading computes them (None for an empty answer)."""
        prepared = [self._prepare(Item(None, None, a)) for a in answers]  # type: ignore[arg-type]
        keys = [clean(p.text) if p.sentences else None for p in prepared]
        vectors = self._embed(list(dict.fromkeys(k for k in keys if k)))
        return [vectors[k] if k else None for k in keys]

    def texts_for(self, items: Iterable[Item]) -> list[str]:
        """Every distinct text grading these items embeds (for batching and benchmarks)."""
        return list(dict.fromkeys(t for it in items for t in self._texts(self._prepare(it))))

    # ------------------------------------------------------------------ internals

    def _prepare(self, item: Item) -> _Prepared:
        text = item.answer or ""
        flags: list[str] = []
        if len(text) > MAX_ANSWER_CHARS:
            text = text[:MAX_ANSWER_CHARS]
            flags.append(F.TRUNCATED)
        sentences = analyse(text) if clean(text) else []
        if sentences:
            flags = F.answer_flags(text) + flags
        return _Prepared(item, text, sentences, flags)

    @staticmethod
    def _texts(p: _Prepared) -> list[str]:
        if not p.sentences:
            return []
        out = [p.item.question.model_answer, clean(p.text)]
        out += [s.text for s in p.sentences[:MAX_SENTENCES]]
        if p.item.rubric:
            out += [c.description for c in p.item.rubric.concepts]
        return out

    def _embed(self, texts: list[str]) -> dict[str, np.ndarray]:
        if not texts:
            return {}
        vecs = self.embedder.embed(texts)
        return dict(zip(texts, vecs))

    def _score(self, p: _Prepared, vec: dict[str, np.ndarray]) -> GradeResult:
        q, rubric = p.item.question, p.item.rubric
        if not p.sentences:
            return no_answer(q, rubric, self.embedder.name)
        # Rounded so that batch composition (padding) cannot flip a result's last digit.
        raw = round(float(vec[clean(p.text)] @ vec[q.model_answer]), 4)
        semantic = S.calibrated_cosine(raw)
        concepts: list[ConceptResult] = []
        misconceptions: list[MisconceptionResult] = []
        if rubric:
            sents = p.sentences[:MAX_SENTENCES]
            svecs = np.stack([vec[s.text] for s in sents])
            cvecs = np.stack([vec[c.description] for c in rubric.concepts])
            best, which = S.concept_similarities(svecs, cvecs)
            for m in rubric.misconceptions:
                hit = find_terms(m.terms, p.sentences, claims=True)
                if hit:
                    misconceptions.append(MisconceptionResult(
                        name=m.name, penalty=m.penalty, evidence=hit.sentence.text, why=m.why
                    ))
            # A sentence stating a misconception is no evidence for a concept
            # ("PATCH replaces the whole resource" does not show what PUT does).
            wrong = {m.evidence for m in misconceptions}
            usable = [s for s in p.sentences if s.text not in wrong]
            for i, c in enumerate(rubric.concepts):
                hit = find_terms(c.terms, usable)
                if hit:
                    concepts.append(ConceptResult(
                        name=c.name, weight=c.weight, required=c.required, matched=True,
                        credit=1.0, via="terms", evidence=hit.sentence.text,
                    ))
                    continue
                ok = sents[int(which[i])].text not in wrong
                credit = S.concept_credit(round(float(best[i]), 4)) if ok else 0.0
                matched = credit >= 0.5 * S.SEMANTIC_CONCEPT_MAX
                concepts.append(ConceptResult(
                    name=c.name, weight=c.weight, required=c.required, matched=matched,
                    credit=credit, via="semantic" if credit > 0 else "none",
                    evidence=sents[int(which[i])].text if credit > 0 else None,
                    hint=None if matched else c.hint,
                ))
        return combine(
            q, rubric, concepts, misconceptions, semantic, raw, self.weights, p.flags,
            self.embedder.name,
        )


def grader_from_settings(settings, calibration_path=None) -> Grader:
    """A Grader with the configured embedder (cached on disk), global weights and, when one
    is given (argument or GRADER_CALIBRATION), a calibration."""
    from grader.embedding import make_embedder

    path = calibration_path or settings.calibration
    calibration = None
    if path is not None:
        from grader.calibration import load_calibration

        calibration = load_calibration(path)
    return Grader(
        make_embedder(settings),
        Weights(keywords=settings.keyword_weight, semantic=settings.semantic_weight),
        calibration,
    )
