"""Agreement when grader learns from graded answers (grader.scoring.graded): the unseen-answers
protocol (`evaluate TEST --graded POOL`) and the K-per-question curve (`--graded-per-question K`).

Both start from the same zero-shot fractions `evaluate` measures and the whole-answer vectors
grading computes (ZeroShot), so a row is scored exactly as `grade --graded` scores it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from grader.accuracy.evaluate import evaluate
from grader.accuracy.metrics import Metrics, metrics, scale_step
from grader.models import GradedRow
from grader.scoring.graded import Blend, GradedSet, answer_matrix, fit_blend, graded_sets, predict, view_temperature
from grader.scoring.signals import second_view_vectors


class GradedFigure(BaseModel):
    """Agreement on the rows scored (not the graded pool), learned and zero-shot on the same rows;
    averaged over the repeats for the K-per-question protocol."""

    file: str
    protocol: str = Field(description="'pool' (--graded POOL) or 'per-question' (--graded-per-question K).")
    k: int | None = Field(default=None, description="Graded answers per question (per-question protocol).")
    repeats: int = 1
    seed: int | None = None
    pool: int = Field(description="Graded answers learned from (mean over repeats).")
    dropped: int = Field(default=0, description="Pool rows dropped: their answer text is also in the file scored.")
    n: int = Field(description="Answers scored (mean over repeats).")
    pearson: float | None
    qwk: float | None
    rmse: float
    mae: float
    zero_shot: Metrics = Field(description="The zero-shot score on the same rows (mean over repeats).")
    blend: Blend = Field(description="The coefficients learned (of the last repeat).")
    scores: list[float] | None = Field(
        default=None, description="--graded POOL: each row's learned score, in the file's points, in file order.")


class ZeroShot(BaseModel):
    """What learning starts from, row by row: the zero-shot fraction `evaluate` measures, the
    whole-answer vector in the view that score embedded it in, and that view's vote temperature."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    z: np.ndarray
    vectors: np.ndarray
    temperatures: np.ndarray


def zero_shot_inputs(rows: Sequence[GradedRow], embedder, calibration, grader, *, bank=None, second=None,
                     progress=None, file: str = "") -> ZeroShot:
    """Each row's zero-shot fraction as `evaluate` measures it (bank rows through `grader`, given
    `bank`) and its whole-answer vector as grading compares answers: in the second model's view
    where the row's score has one (`grader.second` for bank rows, `second` for the others), else
    the first's."""
    zero = evaluate(rows, embedder, calibration, file=file, progress=progress, second=second, bank=bank,
                    grader=grader if bank is not None else None)
    z = np.array([p.score / p.max_score for p in zero.predictions])
    views = [grader.second if r.from_bank else (second if calibration.second else None) for r in rows]
    vectors: list = [None] * len(rows)
    for view in {id(v): v for v in views}.values():
        idx = [i for i, v in enumerate(views) if v is view]
        answers = [rows[i].answer for i in idx]
        got = grader.answer_vectors(answers) if view is None else second_view_vectors(view, answers)
        for i, v in zip(idx, got):
            vectors[i] = v
    return ZeroShot(z=z, vectors=answer_matrix(vectors),
                    temperatures=np.array([view_temperature(v is not None) for v in views]))


def sets_of(rows: Sequence[GradedRow], zs: ZeroShot, idx: Sequence[int]) -> dict[str, GradedSet]:
    """The graded sets of the rows at idx, by question."""
    return graded_sets([r.question_id for r in rows], np.array([r.score / r.max_score for r in rows]), zs.z,
                       zs.vectors, [r.answer for r in rows], [r.score for r in rows], [r.max_score for r in rows], idx,
                       zs.temperatures)


def learned(rows: Sequence[GradedRow], zs: ZeroShot, pool: Sequence[int],
            scored: Sequence[int], blend: Blend | None = None) -> tuple[np.ndarray, Blend]:
    """Fractions of the `scored` rows learned from the `pool` rows (indices into rows), with
    coefficients fitted on the pool unless `blend` gives them."""
    scored = list(scored)
    z, vectors = zs.z, zs.vectors
    sets = sets_of(rows, zs, pool)
    blend = blend or fit_blend(sets)
    out = np.array(z[scored], dtype=float)
    by_q: dict[str, list[int]] = {}
    for j, i in enumerate(scored):
        by_q.setdefault(rows[i].question_id, []).append(j)
    for q, jj in by_q.items():
        ii = [scored[j] for j in jj]
        out[jj] = predict(blend, z[ii], vectors[ii], sets.get(q))[0]
    return out, blend


def _agreement(rows: Sequence[GradedRow], idx: Sequence[int], fractions: np.ndarray, step: float) -> Metrics:
    human = np.array([rows[i].score for i in idx])
    max_s = np.array([rows[i].max_score for i in idx])
    return metrics(human, fractions * max_s, max_s, step)


def _mean(ms: list[Metrics]) -> Metrics:
    def avg(name):
        vals = [getattr(m, name) for m in ms if getattr(m, name) is not None]
        return round(float(np.mean(vals)), 4) if vals else None

    return Metrics(n=round(float(np.mean([m.n for m in ms]))), pearson=avg("pearson"), spearman=avg("spearman"),
                   qwk=avg("qwk"), rmse=avg("rmse"), mae=avg("mae"))


def evaluate_pool(file: str, rows: Sequence[GradedRow], pool_rows: Sequence[GradedRow], zs: ZeroShot,
                  dropped: int) -> GradedFigure:
    """`evaluate TEST --graded POOL`: zs covers rows then pool_rows, in that order."""
    allrows = list(rows) + list(pool_rows)
    scored = list(range(len(rows)))
    pool = list(range(len(rows), len(allrows)))
    pred, blend = learned(allrows, zs, pool, scored)
    step = scale_step(rows)
    m = _agreement(allrows, scored, pred, step)
    zero = _agreement(allrows, scored, zs.z[scored], step)
    return GradedFigure(file=file, protocol="pool", pool=len(pool), dropped=dropped, n=m.n, pearson=m.pearson,
                        qwk=m.qwk, rmse=m.rmse, mae=m.mae, zero_shot=zero, blend=blend,
                        scores=[round(float(f) * rows[i].max_score, 4) for f, i in zip(pred, scored)])


def split_per_question(rows: Sequence[GradedRow], k: int, seed: int) -> tuple[list[int], list[int]]:
    """K random rows of each question as the pool (all but one where a question has K or fewer),
    the rest scored."""
    rng = np.random.default_rng(seed)
    by_q: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_q.setdefault(r.question_id, []).append(i)
    pool, scored = [], []
    for q in sorted(by_q):
        ii = list(rng.permutation(by_q[q]))
        take = min(k, len(ii) - 1)
        pool += [int(i) for i in ii[:take]]
        scored += [int(i) for i in ii[take:]]
    return sorted(pool), sorted(scored)


def evaluate_per_question(file: str, rows: Sequence[GradedRow], zs: ZeroShot, k: int,
                          seed: int = 0, repeats: int = 5) -> GradedFigure:
    """`evaluate FILE --graded-per-question K`: per question K random graded rows as the pool, the
    rest scored; averaged over `repeats` seeds from `seed`. K = 0 is the zero-shot figure."""
    step = scale_step(rows)
    learned_m, zero_m, pools = [], [], []
    blend = fit_blend({})
    for s in range(seed, seed + repeats):
        pool, scored = split_per_question(rows, k, s)
        pred, blend = learned(rows, zs, pool, scored)
        learned_m.append(_agreement(rows, scored, pred, step))
        zero_m.append(_agreement(rows, scored, zs.z[scored], step))
        pools.append(len(pool))
    m = _mean(learned_m)
    return GradedFigure(file=file, protocol="per-question", k=k, repeats=repeats, seed=seed,
                        pool=round(float(np.mean(pools))), n=m.n, pearson=m.pearson, qwk=m.qwk, rmse=m.rmse,
                        mae=m.mae, zero_shot=_mean(zero_m), blend=blend)
