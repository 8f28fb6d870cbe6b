"""The grading engine: one answer or many, rubric and embedding signals together."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from grader.embedding import Embedder, longest_first, text_lengths
from grader.models import ConceptResult, GradeResult, MisconceptionResult, Question, Rubric, Weights
from grader.scoring import flags as F
from grader.scoring import semantic as S
from grader.scoring.combine import combine, no_answer
from grader.scoring.keywords import Vocabulary, find_terms
from grader.scoring.text import Sentence, analyse, clean

# Interview answers are a few paragraphs; beyond this, text is not read (and is flagged),
# so a megabyte of padding costs no more than a long answer.
MAX_ANSWER_CHARS = 20_000
# Sentences beyond this many are not embedded one by one.
MAX_SENTENCES = 64
# Texts per embed call in `embed_texts`: a multiple of the usual batch size (64).
EMBED_SLICE = 512


class PairScorer(Protocol):
    """A model that scores (reference answer, answer) pairs directly, e.g. one from
    `grader train`: `name` says which model it is (recorded in every result)."""

    name: str

    def score(self, references: Sequence[str], answers: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class Item:
    """One answer to grade: the question, its rubric (None: reference answer only), the text."""

    question: Question
    rubric: Rubric | None
    answer: str


@dataclass
class Prepared:
    """An answer as grading reads it: cut to length, split into sentences, flagged."""

    item: Item
    text: str
    sentences: list[Sentence]
    flags: list[str]


class Grader:
    """Scores answers deterministically against rubrics and model answers."""

    def __init__(self, embedder: Embedder, weights: Weights | None = None, calibration=None,
                 scorer: PairScorer | None = None, second: Embedder | None = None):
        self.embedder = embedder
        self.weights = weights or Weights()
        # Opt-in (--calibration / GRADER_CALIBRATION): scores re-made from signals fitted
        # on human grades; without it, the documented rubric combination.
        self.calibration = calibration
        # Opt-in (--model / GRADER_TRAINED_MODEL): a trained model's score, one more signal
        # of the calibration (which must have been fitted with it).
        self.scorer = scorer
        # The second embedding model of a calibration with a second view (else unused).
        self.second = second

    def scored_by(self) -> dict[str, str | None]:
        """The models every result records: the embedding model and the trained one (or None)."""
        return {"model": self.embedder.name, "trained_model": self.scorer.name if self.scorer else None}

    def grade(self, question: Question, rubric: Rubric | None, answer: str) -> GradeResult:
        """Score one answer."""
        return self.grade_many([Item(question, rubric, answer)])[0]

    def grade_many(self, items: Sequence[Item], *, with_answer_vectors: bool = False,
                   vectors: dict[str, np.ndarray] | None = None, prepared: list[Prepared] | None = None):
        """Score many answers, embedding every distinct text once.

        With `with_answer_vectors`, also returns each whole answer's vector (None if empty);
        `vectors` are texts already embedded (`embed_texts`), not embedded again; `prepared`
        are the items as `prepare` read them (not read twice).
        """
        if prepared is None:
            prepared = self.prepare(items)
        texts = list(dict.fromkeys(t for p in prepared for t in self._texts(p)))
        if vectors is None:
            vectors = self._embed(texts)
        else:
            fresh = self._embed([t for t in texts if t not in vectors])
            vectors = {t: fresh[t] if t in fresh else vectors[t] for t in texts}
        results = [self._score(p, vectors) for p in prepared]
        extra = None
        if self.scorer is not None:
            results, extra = self._trained_scores(items, results)
        if self.calibration is not None:
            from grader.calibration import apply_to_results

            results = apply_to_results(self.calibration, list(items), results, self.embedder, extra,
                                       second=self.second)
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

    def embed_texts(self, texts: Iterable[str], progress: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
        """Embed distinct texts longest first (by the embedder's own lengths: tokens), in slices:
        batches of like lengths pad little (grading chunk by chunk padded about 20% more), and a
        cached embedder keeps each slice as soon as it is done.  `progress(n)` after each slice."""
        distinct = list(dict.fromkeys(texts))
        order = [distinct[i] for i in longest_first(text_lengths(self.embedder, distinct))]
        out: dict[str, np.ndarray] = {}
        for i in range(0, len(order), EMBED_SLICE):
            part = order[i:i + EMBED_SLICE]
            out.update(self._embed(part))
            if progress:
                progress(len(part))
        return out

    def texts_for(self, items: Iterable[Item], prepared: list[Prepared] | None = None) -> list[str]:
        """Every distinct text grading these items embeds (for batching and benchmarks)."""
        if prepared is None:
            prepared = self.prepare(items)
        return list(dict.fromkeys(t for p in prepared for t in self._texts(p)))

    def prepare(self, items: Iterable[Item]) -> list[Prepared]:
        """The items read once (cut, split into sentences, flagged), for `texts_for` and
        `grade_many` to share."""
        return [self._prepare(it) for it in items]

    # ------------------------------------------------------------------ internals

    def _trained_scores(self, items: Sequence[Item], results: list[GradeResult]):
        """Each answered result with the trained model's score and name; the scores as an
        extra calibration signal (NaN where there is no answer)."""
        from grader.calibration import MODEL_SIGNAL

        idx = [i for i, r in enumerate(results) if r.band != "no answer"]
        col = np.full(len(results), np.nan)
        if idx:
            got = self.scorer.score([items[i].question.model_answer for i in idx],
                                    [items[i].answer[:MAX_ANSWER_CHARS] for i in idx])
            col[idx] = np.round(np.asarray(got, dtype=float), 4)
        out = []
        for i, r in enumerate(results):
            upd: dict = {"trained_model": self.scorer.name}
            if np.isfinite(col[i]):
                upd["components"] = r.components.model_copy(update={"trained": float(col[i])})
            out.append(r.model_copy(update=upd))
        return out, {MODEL_SIGNAL: col}

    def _prepare(self, item: Item) -> Prepared:
        text = item.answer or ""
        flags: list[str] = []
        if len(text) > MAX_ANSWER_CHARS:
            text = text[:MAX_ANSWER_CHARS]
            flags.append(F.TRUNCATED)
        sentences = analyse(text) if clean(text) else []
        if sentences:
            flags = F.answer_flags(text) + flags
        return Prepared(item, text, sentences, flags)

    @staticmethod
    def _texts(p: Prepared) -> list[str]:
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

    def _score(self, p: Prepared, vec: dict[str, np.ndarray]) -> GradeResult:
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
            vocab = Vocabulary(p.sentences)
            for m in rubric.misconceptions:
                hit = find_terms(m.terms, p.sentences, claims=True, vocab=vocab)
                if hit:
                    misconceptions.append(MisconceptionResult(
                        name=m.name, penalty=m.penalty, evidence=hit.sentence.text, why=m.why
                    ))
            # A sentence stating a misconception is no evidence for a concept
            # ("PATCH replaces the whole resource" does not show what PUT does).
            wrong = {m.evidence for m in misconceptions}
            usable = [s for s in p.sentences if s.text not in wrong]
            for i, c in enumerate(rubric.concepts):
                hit = find_terms(c.terms, usable, vocab=vocab)
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


def grader_from_settings(settings, calibration_path=None, model_path=None) -> Grader:
    """A Grader with the configured embedder (cached on disk), global weights and, when one
    is given (argument or GRADER_CALIBRATION), a calibration; with a trained model (argument
    or GRADER_TRAINED_MODEL), its score too, combined by a calibration fitted with it (the
    model folder's own calibration.json unless one is given)."""
    from pathlib import Path

    from grader.embedding import make_embedder, make_second_embedder
    from grader.errors import InputError

    path = calibration_path or settings.calibration
    model = model_path or settings.trained_model
    scorer = None
    if model is not None:
        from grader.training import CALIBRATION_FILE, TrainedModel

        scorer = TrainedModel.load(model, threads=settings.thread_count())
        if path is None:
            path = Path(model) / CALIBRATION_FILE
            if not path.is_file():
                raise InputError(
                    f"--model: {model} has no {CALIBRATION_FILE} (too few held-out answers when it was "
                    f"trained); fit one with `grader calibrate FILE.jsonl --model {model} --out cal.json` "
                    "and pass --calibration cal.json"
                )
    calibration = None
    if path is not None:
        from grader.calibration import load_calibration

        calibration = load_calibration(path)
        check_trained(calibration, path, scorer, model)
    return Grader(
        make_embedder(settings),
        Weights(keywords=settings.keyword_weight, semantic=settings.semantic_weight),
        calibration,
        scorer,
        make_second_embedder(settings) if calibration is not None and calibration.second else None,
    )


def check_trained(calibration, path, scorer, model) -> None:
    """A calibration and a trained model go together or not at all."""
    from grader.calibration import MODEL_SIGNAL
    from grader.errors import InputError
    from grader.training import same_weights

    uses = MODEL_SIGNAL in calibration.features()
    if scorer is None and uses and all(MODEL_SIGNAL in f.features for f in calibration.fits):
        raise InputError(f"{path}: this calibration combines a trained model's score; give that model with --model DIR")
    if scorer is not None and not uses:
        raise InputError(
            f"{path}: this calibration has no weight for the trained model's score; fit one with "
            f"`grader calibrate FILE.jsonl --model {model} --out cal.json`"
        )
    if scorer is not None and calibration.trained_model and not same_weights(calibration.trained_model, scorer.name):
        raise InputError(
            f"{path}: fitted with the trained model {calibration.trained_model}, not {scorer.name}"
        )
