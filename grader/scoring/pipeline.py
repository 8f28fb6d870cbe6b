"""The scoring pipeline: answers prepared once, every scorer's evidence, one combiner.

`grade`, `ask`, `batch`, `review` and `evaluate` all score through `Grader`: the answers are
read once (grader.scoring.prepare), every text any scorer needs is embedded once, each
scorer returns its evidence (grader.scoring.evidence), the mix makes a fraction of it and
the combiner's policy makes the result (grader.scoring.combine)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from grader.embedding import Embedder, longest_first, text_lengths
from grader.errors import InputError
from grader.models import GradeResult, Question, Rubric, Weights
from grader.scoring.calibration import MODEL_SIGNAL, Calibration, load_calibration
from grader.scoring.combine import CalibratedMix, Mix, RubricMix, combine, no_answer
from grader.scoring.evidence import Evidence, Scorer
from grader.scoring.exemplars import ExemplarScorer
from grader.scoring.prepare import MAX_ANSWER_CHARS, Item, Prepared, prepare
from grader.scoring.rubric import RubricScorer
from grader.scoring.signals import ReferenceScorer
from grader.scoring.similarity import SimilarityScorer
from grader.scoring.trained import CALIBRATION_FILE, TrainedScorer, same_weights

__all__ = ["Grader", "Item", "MAX_ANSWER_CHARS", "PairScorer", "grader_from_settings"]

# Texts per embed call in `embed_texts`: a multiple of the usual batch size (64).
EMBED_SLICE = 512


class PairScorer(Protocol):
    """A model that scores (reference answer, answer) pairs directly, e.g. one from
    `grader train`: `name` says which model it is (recorded in every result)."""

    name: str

    def score(self, references: Sequence[str], answers: Sequence[str]) -> np.ndarray: ...


class Grader:
    """Scores answers deterministically: the scorers' evidence, combined by one mix and policy."""

    def __init__(self, embedder: Embedder, mix: Mix | None = None, trained: PairScorer | None = None,
                 second: Embedder | None = None):
        self.embedder = embedder
        self.mix: Mix = mix or RubricMix()
        # A trained model's score is one more signal, for a calibration fitted with it.
        self.trained = trained
        # The second embedding model of a calibration with a second view (else unused).
        self.second = second
        scorers: list[Scorer] = [SimilarityScorer(), RubricScorer(), ExemplarScorer()]
        if self.mix.reference_signals:
            scorers.append(ReferenceScorer(embedder, second))
        if trained is not None:
            scorers.append(TrainedScorer(trained))
        self.scorers = scorers

    def scored_by(self) -> dict[str, str | None]:
        """The models every result records: the embedding model and the trained one (or None)."""
        return {"model": self.embedder.name, "trained_model": self.trained.name if self.trained else None}

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
        texts = self.texts_for(items, prepared)
        if vectors is None:
            vectors = self._embed(texts)
        else:
            fresh = self._embed([t for t in texts if t not in vectors])
            vectors = {t: fresh[t] if t in fresh else vectors[t] for t in texts}
        results = self.score_prepared(prepared, vectors)
        if not with_answer_vectors:
            return results
        return results, [vectors.get(p.whole) if not p.empty else None for p in prepared]

    def score_prepared(self, prepared: Sequence[Prepared], vectors: dict[str, np.ndarray]) -> list[GradeResult]:
        """Every scorer's evidence for the prepared answers (texts already embedded), combined."""
        evidence = [Evidence() for _ in prepared]
        for scorer in self.scorers:
            evidence = [e.merged(f) for e, f in zip(evidence, scorer.score(prepared, vectors))]
        live = [i for i, p in enumerate(prepared) if not p.empty]
        fractions = self.mix.fractions([prepared[i] for i in live], [evidence[i] for i in live])
        made = dict(zip(live, fractions))
        trained = self.trained.name if self.trained else None
        out = []
        for i, p in enumerate(prepared):
            if i in made:
                r = combine(p, evidence[i], *made[i], mix=self.mix.name, model=self.embedder.name)
            else:
                r = no_answer(p.item.question, p.item.rubric, self.embedder.name, self.mix.name)
            out.append(r.model_copy(update={"trained_model": trained}) if trained else r)
        return out

    def answer_vectors(self, answers: Sequence[str]) -> list[np.ndarray | None]:
        """Whole-answer vectors as grading computes them (None for an empty answer)."""
        prepared = self.prepare(Item(None, None, a) for a in answers)  # type: ignore[arg-type]
        keys = [None if p.empty else p.whole for p in prepared]
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
        """Every distinct text the scorers need embedded for these items (for batching and benchmarks)."""
        if prepared is None:
            prepared = self.prepare(items)
        return list(dict.fromkeys(t for p in prepared for s in self.scorers for t in s.texts(p)))

    def prepare(self, items: Iterable[Item]) -> list[Prepared]:
        """The items read once (cut, split into sentences, flagged), for every scorer to share."""
        return prepare(items)

    def _embed(self, texts: list[str]) -> dict[str, np.ndarray]:
        if not texts:
            return {}
        return dict(zip(texts, self.embedder.embed(texts)))


def grader_from_settings(settings, calibration_path=None, model_path=None) -> Grader:
    """A Grader with the configured embedder (cached on disk) and mix: the rubric mix with the
    global weights, or a calibration (argument or GRADER_CALIBRATION); with a trained model
    (argument or GRADER_TRAINED_MODEL), its score too, combined by a calibration fitted with
    it (the model folder's own calibration.json unless one is given)."""
    from grader.embedding import make_embedder, make_second_embedder

    path = calibration_path or settings.calibration
    model = model_path or settings.trained_model
    trained = None
    if model is not None:
        from grader.scoring.trained import TrainedModel

        trained = TrainedModel.load(model, threads=settings.thread_count())
        if path is None:
            path = Path(model) / CALIBRATION_FILE
            if not path.is_file():
                raise InputError(
                    f"--model: {model} has no {CALIBRATION_FILE} (too few held-out answers when it was "
                    f"trained); fit one with `grader calibrate FILE.jsonl --model {model} --out cal.json` "
                    "and pass --calibration cal.json"
                )
    mix: Mix = RubricMix(Weights(keywords=settings.keyword_weight, semantic=settings.semantic_weight))
    second = None
    if path is not None:
        calibration = load_calibration(path)
        check_trained(calibration, path, trained, model)
        mix = CalibratedMix(calibration)
        second = make_second_embedder(settings) if calibration.second else None
    return Grader(make_embedder(settings), mix, trained, second)


def check_trained(calibration: Calibration, path, scorer, model) -> None:
    """A calibration and a trained model go together or not at all."""
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
