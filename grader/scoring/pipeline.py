"""The scoring pipeline: answers prepared once, every scorer's evidence, one combiner.

`grade`, `ask`, `batch`, `review` and `evaluate` all score through `Grader`: the answers are
read once (grader.scoring.prepare), every text any scorer needs is embedded once, each
scorer returns its evidence (grader.scoring.evidence), the mix makes a fraction of it and
the combiner's policy makes the result (grader.scoring.combine)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from threading import Lock
from typing import Any, Protocol

import numpy as np

from grader.embedding import Embedder, longest_first, text_lengths
from grader.errors import InputError
from grader.models import GradeResult, NearestGraded, Question, Rubric, Weights
from grader.scoring.calibration import MODEL_SIGNAL, Calibration, load_calibration
from grader.scoring.combine import CalibratedMix, Mix, RubricMix, combine, learned, no_answer
from grader.scoring.evidence import Evidence, Scorer
from grader.scoring.exemplars import ExemplarScorer
from grader.scoring.graded import Learned, answer_matrix, fit_blend, graded_sets, identity, predict, view_temperature
from grader.scoring.prepare import MAX_ANSWER_CHARS, Item, Prepared, prepare
from grader.scoring.rubric import RubricScorer
from grader.scoring.signals import ReferenceScorer, second_view_vectors
from grader.scoring.similarity import SimilarityScorer
from grader.scoring.trained import CALIBRATION_FILE, TrainedScorer, same_weights

__all__ = ["Grader", "Item", "MAX_ANSWER_CHARS", "PairScorer", "grader_from_settings"]

# Texts per embed call in `embed_texts`: a multiple of the usual batch size (64).
EMBED_SLICE = 512
# Results kept for answers that come again in later calls (a batch grades chunk by chunk, and
# copied or stock answers recur across chunks): the oldest goes first beyond this many.
RECENT_RESULTS = 4096


class PairScorer(Protocol):
    """A model that scores (reference answer, answer) pairs directly, e.g. one from
    `grader train`: `name` says which model it is (recorded in every result)."""

    name: str

    def score(self, references: Sequence[str], answers: Sequence[str]) -> np.ndarray: ...


class Grader:
    """Scores answers deterministically: the scorers' evidence, combined by one mix and policy."""

    def __init__(self, embedder: Embedder, mix: Mix | None = None, trained: PairScorer | None = None,
                 second: Embedder | None = None, learned: Learned | None = None):
        self.embedder = embedder
        # What it learned from graded answers (`learning_from`), applied after the zero-shot score.
        self.learned = learned
        self.mix: Mix = mix or RubricMix()
        # A trained model's score is one more signal, for a calibration fitted with it.
        self.trained = trained
        # The second embedding model of a calibration with a second view (else unused).
        self.second = second
        # (question, rubric, answer) by their ids -> (question, rubric, the result's fields).
        self._recent: dict[tuple[int, int, str], tuple[Question, Rubric | None, dict[str, Any]]] = {}
        self._recent_lock = Lock()
        scorers: list[Scorer] = [SimilarityScorer(), RubricScorer(), ExemplarScorer()]
        if self.mix.reference_signals:
            scorers.append(ReferenceScorer(embedder, second))
        if trained is not None:
            scorers.append(TrainedScorer(trained))
        self.scorers = scorers

    def scored_by(self) -> dict[str, str | None]:
        """What every result records it was scored by: the embedding model, the trained one and
        the graded answers learned from (None when not used)."""
        return {"model": self.embedder.name, "trained_model": self.trained.name if self.trained else None,
                "learned_from": self.learned.identity if self.learned else None}

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
        """Every scorer's evidence for the prepared answers (texts already embedded), combined.
        The same answer to the same question and rubric is scored once, in this call or a recent
        one: every scorer reads one answer at a time, so its result cannot depend on what else
        is in the call."""
        out: list[GradeResult | None] = [None] * len(prepared)
        todo: dict[tuple[int, int, str], list[int]] = {}
        with self._recent_lock:
            for i, p in enumerate(prepared):
                key = (id(p.item.question), id(p.item.rubric), p.item.answer)
                kept = self._recent.get(key)
                # The ids are safe keys: each entry holds its question and rubric alive, so no
                # other object can have their ids while it is kept.
                if kept is not None:
                    out[i] = GradeResult.model_validate(kept[2])
                else:
                    todo.setdefault(key, []).append(i)
        if not todo:
            return out  # type: ignore[return-value]
        scored = self._score([prepared[ii[0]] for ii in todo.values()], vectors)
        with self._recent_lock:
            for (key, ii), r in zip(todo.items(), scored):
                # A copy each, not a shared object; rebuilt from its fields (a deep copy took 4x longer).
                fields = r.model_dump()
                out[ii[0]] = r
                for i in ii[1:]:
                    out[i] = GradeResult.model_validate(fields)
                if len(self._recent) >= RECENT_RESULTS:
                    self._recent.pop(next(iter(self._recent)))
                item = prepared[ii[0]].item
                self._recent[key] = (item.question, item.rubric, fields)
        return out  # type: ignore[return-value]

    def _score(self, prepared: Sequence[Prepared], vectors: dict[str, np.ndarray]) -> list[GradeResult]:
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
        return self._learn(prepared, vectors, out) if self.learned is not None else out

    def learning_from(self, items: Sequence[Item], scores: Sequence[float], max_scores: Sequence[float]) -> "Grader":
        """This grader, also learning from graded answers (items with their human score and maximum):
        each question's answers are then scored by grader.scoring.graded's blend."""
        if not len(items) == len(scores) == len(max_scores):
            raise ValueError("one score and maximum per graded answer")
        grades = [s / m for s, m in zip(scores, max_scores)]
        zero_shot = Grader(self.embedder, self.mix, self.trained, self.second)
        prepared = zero_shot.prepare(items)
        results, vecs = zero_shot.grade_many(items, with_answer_vectors=True, prepared=prepared)
        V = answer_matrix(vecs) if self.second is None else self._second_view(prepared)
        ids = [it.question.id for it in items]
        sets = graded_sets(ids, np.asarray(grades, dtype=float), np.array([r.score / r.max_score for r in results]),
                           V, [it.answer for it in items], list(scores), list(max_scores),
                           temperatures=[view_temperature(self.second is not None)] * len(items))
        learned_ = Learned(sets=sets, blend=fit_blend(sets),
                           identity=identity(ids, [it.answer for it in items], scores, max_scores))
        return Grader(self.embedder, self.mix, self.trained, self.second, learned_)

    def _learn(self, prepared: Sequence[Prepared], vectors: Mapping[str, np.ndarray],
               results: list[GradeResult]) -> list[GradeResult]:
        """Results of questions with graded answers, moved by what those answers say."""
        by_q: dict[str, list[int]] = {}
        for i, p in enumerate(prepared):
            if not p.empty and p.item.question.id in self.learned.sets:
                by_q.setdefault(p.item.question.id, []).append(i)
        out = [r.model_copy(update={"learned_from": self.learned.identity}) for r in results]
        for qid, ii in by_q.items():
            graded = self.learned.sets[qid]
            z = np.array([results[i].score / results[i].max_score for i in ii])
            mine = [prepared[i] for i in ii]
            V = np.stack([vectors[p.whole] for p in mine]) if self.second is None else self._second_view(mine)
            fractions, near = predict(self.learned.blend, z, V, graded)
            for i, f, nb in zip(ii, fractions, near):
                k = nb.nearest
                nearest = NearestGraded(source="graded", score=graded.scores[k], max_score=graded.max_scores[k],
                                        similarity=round(nb.similarity, 4), answer=graded.answers[k])
                out[i] = learned(out[i], float(f), nb.vote, nearest)
        return out

    def _second_view(self, prepared: Sequence[Prepared]) -> np.ndarray:
        """Whole answers in the second model's view: where this grader's score has one, its
        neighbours are found there too (measured better on all three graded sets)."""
        return answer_matrix(second_view_vectors(self.second, [p.item.answer for p in prepared]))

    def answer_vectors(self, answers: Sequence[str]) -> list[np.ndarray | None]:
        """Whole-answer vectors as grading computes them (None for an empty answer)."""
        prepared = self.prepare(Item(None, None, a) for a in answers)  # type: ignore[arg-type]
        keys = [None if p.empty else p.whole for p in prepared]
        vectors = self._embed(list(dict.fromkeys(k for k in keys if k)))
        return [vectors[k] if k else None for k in keys]

    def embed_texts(self, texts: Iterable[str], progress: Callable[[int], None] | None = None, *,
                    slice_texts: int = EMBED_SLICE) -> dict[str, np.ndarray]:
        """Embed distinct texts longest first (by the embedder's own lengths: tokens), in slices:
        batches of like lengths pad little (grading chunk by chunk padded about 20% more), and a
        cached embedder keeps each slice as soon as it is done.  `progress(n)` after each slice."""
        distinct = list(dict.fromkeys(texts))
        order = [distinct[i] for i in longest_first(text_lengths(self.embedder, distinct))]
        out: dict[str, np.ndarray] = {}
        for i in range(0, len(order), slice_texts):
            part = order[i:i + slice_texts]
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


def grader_from_settings(settings, calibration_path=None, model_path=None, graded_path=None) -> Grader:
    """A Grader with the configured embedder (cached on disk) and mix: the rubric mix with the
    global weights, or a calibration (argument or GRADER_CALIBRATION); with a trained model
    (argument or GRADER_TRAINED_MODEL), its score too, combined by a calibration fitted with
    it (the model folder's own calibration.json unless one is given); with graded answers
    (argument or GRADER_GRADED), learning from them."""
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
    grader = Grader(make_embedder(settings), mix, trained, second)
    graded = graded_path or settings.graded
    return grader if graded is None else learning_from_file(grader, Path(graded), settings)


def learning_from_file(grader: Grader, path: Path, settings) -> Grader:
    """The grader, learning from a graded file's answers (bank question ids, or their own
    question and reference answer)."""
    from grader.bank import load_bank
    from grader.graded_file import question_for_graded, read_graded

    bank = load_bank(settings.questions, settings.rubrics_dir)
    rows = read_graded(path, bank=bank)
    items = [Item(question_for_graded(r, bank), bank.rubrics.get(r.question_id), r.answer) for r in rows]
    return grader.learning_from(items, [r.score for r in rows], [r.max_score for r in rows])


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
