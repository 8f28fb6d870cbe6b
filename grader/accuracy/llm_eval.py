"""`grader evaluate FILE --llm`: the LLM's help measured against human grades.

Every row is scored as `evaluate` scores it (bank rows exactly as `grade` ships them, the
others against their own reference answer), then reviewed by the configured LLM as `batch`
reviews (concurrency, cache, retries) and blended by the one policy.  Three figures, side
by side: the deterministic score, the LLM's own fraction (verified concepts only; rows
whose reply failed are left out of that column and counted) and the blended score.

Rows without a bank rubric get one made from their reference answer for the LLM: one
concept per sentence of it ("point 1", ...), equal weights.  It is only what the LLM
judges against; their deterministic score is evaluate's own.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, Field

from grader.accuracy.metrics import Metrics, metrics, scale_step
from grader.llm.base import LLMUsage
from grader.llm.repeat import Stability
from grader.models import Concept, GradedRow, GradeResult, Question, Rubric

MAX_POINTS = 6  # concepts made from a reference answer


class LLMFigures(BaseModel):
    """What `grader evaluate --llm` reports (also its --format json)."""

    file: str
    mode: str = Field(description="review (one review of everything) or checklist (one question per concept).")
    model: str
    n: int
    bank_rubric_rows: int = Field(description="Rows judged against their bank question's rubric.")
    reference_rubric_rows: int = Field(description="Rows judged against points made from their reference answer.")
    deterministic: Metrics
    llm: Metrics | None = Field(description="The LLM's own fraction, on the rows with a valid reply.")
    deterministic_same_rows: Metrics | None = Field(description="The deterministic score on those same rows.")
    blended: Metrics
    usage: LLMUsage
    requests_per_answer: float
    seconds: float
    stability: Stability | None = None
    judges: list[dict] = Field(default_factory=list, description="A panel's usage per judge, and how often they disagreed.")
    panel_disagreements: int = 0
    results: list[GradeResult] = Field(default_factory=list, exclude=True)


def reference_rubric(row: GradedRow, question: Question) -> Rubric:
    """The points of a row's reference answer as rubric concepts, for the LLM to judge."""
    from grader.text import split_sentences

    sentences = [s.strip() for s in split_sentences(question.model_answer or "") if len(s.split()) >= 3]
    sentences = sentences[:MAX_POINTS] or [(question.model_answer or question.question).strip()[:400]]
    concepts = [Concept.model_construct(name=f"point {i}", description=s[:400], weight=1.0, required=False,
                                        terms=[s[:60]], hint=s[:200])
                for i, s in enumerate(sentences, 1)]
    # Constructed, not validated: dataset ids are not bank slugs, and nothing scores with its terms.
    return Rubric.model_construct(question_id=row.question_id, points=row.max_score, weights=None, subjects=[],
                                  concepts=concepts, misconceptions=[], exemplars=[])


def reference_result(row: GradedRow, question: Question, points: float, model: str) -> GradeResult:
    """A reference row's deterministic result: evaluate's own prediction, grader's flags."""
    from grader.scoring import flags as F
    from grader.scoring.combine import band_for, no_answer

    empty = no_answer(question, None, model)
    if not row.answer.strip():
        return empty.model_copy(update={"max_score": row.max_score})
    frac = points / row.max_score if row.max_score else 0.0
    return empty.model_copy(update={
        "score": round(points, 4), "max_score": row.max_score, "percent": round(100 * frac, 1),
        "band": band_for(frac), "flags": [F.INJECTION] if F.looks_injected(row.answer) else [],
    })


def figures(rows: Sequence[GradedRow], deterministic: Sequence[GradeResult], blended: Sequence[GradeResult],
            **fields) -> LLMFigures:
    """The three figures side by side (see the module docstring)."""
    human = np.array([r.score for r in rows], dtype=float)
    max_s = np.array([r.max_score for r in rows], dtype=float)
    step = scale_step(rows)

    def points(results):
        return np.array([res.score / res.max_score * m if res.max_score else 0.0
                         for res, m in zip(results, max_s)])

    det, blend = points(deterministic), points(blended)
    ok = [i for i, b in enumerate(blended) if b.llm and b.llm.get("fraction") is not None]
    llm_points = np.array([blended[i].llm["fraction"] * max_s[i] for i in ok])
    return LLMFigures(
        n=len(rows), deterministic=metrics(human, det, max_s, step),
        llm=metrics(human[ok], llm_points, max_s[ok], step) if ok else None,
        deterministic_same_rows=metrics(human[ok], det[ok], max_s[ok], step) if ok else None,
        blended=metrics(human, blend, max_s, step), results=list(blended), **fields,
    )


def evaluate_llm(rows: Sequence[GradedRow], evaluation, bank, provider, *, params, concurrency: int,
                 repeat: int = 1, base_seed: int = 42, mode: str = "review", progress=None,
                 file: str = "") -> LLMFigures:
    """Review every row's deterministic result with `provider` and measure all three scores.

    `evaluation` is `evaluate()`'s result on the same rows (its `results` hold the bank rows'
    GradeResults, its predictions the others' scores)."""
    from grader.llm.batch import review_many
    from grader.llm.repeat import review_repeated

    t0 = time.perf_counter()
    items, bank_rows = review_items(rows, evaluation, bank)
    det = [it[3] for it in items]
    stability = None
    if repeat > 1:
        blended, usage, stability = review_repeated(items, provider, repeat, concurrency, progress, params,
                                                    base_seed=base_seed)
    else:
        blended, usage = review_many(items, provider, concurrency, progress, params)
    asked = sum(1 for _, _, a, r in items if r.band != "no answer" and a.strip())  # answers, not asks
    judges, disagreements = panel_usage(blended)
    return figures(
        rows, det, blended, judges=judges, panel_disagreements=disagreements, file=file, mode=mode, model=getattr(provider, "model", "?"),
        bank_rubric_rows=bank_rows, reference_rubric_rows=len(rows) - len(evaluation.results),
        usage=usage, requests_per_answer=round(usage.requests / asked, 2) if asked else 0.0,
        seconds=round(time.perf_counter() - t0, 2), stability=stability,
    )


def panel_usage(results: Sequence[GradeResult]) -> tuple[list[dict], int]:
    """Per judge of a panel: requests, tokens, cache hits and failures; and how many answers split them."""
    judges: dict[str, dict] = {}
    split = 0
    for res in results:
        info = res.llm or {}
        split += bool(info.get("panel_disagrees"))
        for j in info.get("panel", []):
            u = judges.setdefault(j["model"], {"model": j["model"], "requests": 0, "prompt_tokens": 0,
                                               "completion_tokens": 0, "cached": 0, "errors": 0})
            u["requests"] += j["requests"]
            u["cached"] += bool(j["cached"])
            u["errors"] += bool(j["error"])
            if not j["cached"]:
                u["prompt_tokens"] += j["prompt_tokens"]
                u["completion_tokens"] += j["completion_tokens"]
    return list(judges.values()), split


def review_items(rows: Sequence[GradedRow], evaluation, bank) -> tuple[list[tuple], int]:
    """(question, rubric, answer, deterministic result) per row, and how many rows have a bank rubric."""
    from grader.graded_file import question_for_graded

    items, bank_rows = [], 0
    for i, (row, pred) in enumerate(zip(rows, evaluation.predictions)):
        if i in evaluation.results:
            res = evaluation.results[i]
            q, rubric = bank.questions[row.question_id], bank.rubrics.get(row.question_id)
            bank_rows += rubric is not None
        else:
            q = question_for_graded(row, bank) if bank is not None else _own_question(row)
            rubric = reference_rubric(row, q)
            res = reference_result(row, q, pred.score, evaluation.model)
        items.append((q, rubric, row.answer, res))
    return items, bank_rows


def _own_question(row: GradedRow) -> Question:
    return Question.model_construct(id=row.question_id, topic="Custom", question=row.question,
                                    model_answer=row.reference_answer or "")
