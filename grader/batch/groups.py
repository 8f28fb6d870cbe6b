"""Answer groups (`grader groups`): each question's answers clustered by meaning, so a person
grades one representative per group, and which groups to grade first.

Clusters are scikit-learn's agglomerative clustering of whole-answer vectors (average linkage,
cosine distance below GROUP_DISTANCE), deterministic for the same file. The representative is
the member closest on average to the others. Groups are suggested largest first among those no
graded answer covers yet (cosine to the nearest graded answer of the question below
COVERED_SIM), and among equals the most uncertain first: the zero-shot scores of their members
spread widest, or sit nearest a band boundary.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from grader.bank import Bank, question_for_row
from grader.batch.ingest import open_source
from grader.batch.plan import plan_batch
from grader.errors import InputError
from grader.models import AnswerRow
from grader.scoring.combine import ACCEPTABLE, STRONG

# Average cosine distance under which answers join one group (cosine 0.8 and above).
GROUP_DISTANCE = 0.2
# A group is covered when a graded answer of its question is this close to its representative.
COVERED_SIM = 0.9
# Band boundaries (fractions of the maximum) whose nearness makes a score uncertain.
BOUNDARIES = (ACCEPTABLE, STRONG)
# How near (a fraction of the maximum) a mean score must be to a boundary to count as uncertain.
NEAR = 0.1


class Member(BaseModel):
    candidate: str
    line: int
    score: float | None = Field(description="Zero-shot score (None for an empty answer).")


class AnswerGroup(BaseModel):
    """One group of like answers to one question."""

    question_id: str
    group: int = Field(description="Numbered per question, largest group first.")
    size: int
    representative: Member
    answer: str = Field(description="The representative's answer.")
    members: list[Member]
    mean_score: float | None
    max_score: float
    spread: float = Field(description="Standard deviation of the members' zero-shot scores, in points.")
    covered: float | None = Field(default=None, description="Cosine of the representative to the nearest graded answer.")
    suggest: int = Field(default=0, description="Grading order across the file: 1 first (0: already covered).")
    why: str = ""


class Groups(BaseModel):
    source: str
    answers: int
    questions: int
    groups: list[AnswerGroup]


def cluster(vectors: np.ndarray, distance: float = GROUP_DISTANCE) -> np.ndarray:
    """Group labels of unit vectors, numbered by size (largest first, ties by first member)."""
    n = len(vectors)
    if n == 1:
        return np.zeros(1, dtype=int)
    from sklearn.cluster import AgglomerativeClustering

    raw = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average",
                                  distance_threshold=distance).fit_predict(vectors)
    order = sorted(set(raw.tolist()), key=lambda c: (-(raw == c).sum(), int(np.argmax(raw == c))))
    remap = {c: i for i, c in enumerate(order)}
    return np.array([remap[c] for c in raw.tolist()])


def _uncertainty(fractions: np.ndarray) -> float:
    """0..1: a spread of scores, or a mean near a band boundary, makes a group uncertain."""
    if len(fractions) == 0:
        return 0.0
    near = 1 - min(abs(float(fractions.mean()) - b) for b in BOUNDARIES) / (2 * NEAR)
    return max(float(fractions.std()) * 2, max(0.0, near))


def group_answers(file: str, bank: Bank, grader, *, graded: Sequence | None = None,
                  input_format: str | None = None, progress: Callable[[int, int], None] | None = None) -> Groups:
    """Every question's answers of an answer file in groups, with the order to grade them in.
    `graded`: GradedRows already graded (their groups are covered)."""
    from grader.scoring import Item

    src = open_source(file, input_format)
    plan = plan_batch(src, bank, skip_invalid=False)
    rows: list[AnswerRow] = list(plan.rows_to_grade(src))
    if not rows:
        raise InputError(f"{src.display}: no answers to group")
    by_q: dict[str, list[AnswerRow]] = {}
    for r in rows:
        by_q.setdefault(r.question_id, []).append(r)
    graded_by_q: dict[str, list[str]] = {}
    for g in graded or ():
        graded_by_q.setdefault(g.question_id, []).append(g.answer)
    groups: list[AnswerGroup] = []
    for done, (qid, qrows) in enumerate(by_q.items()):
        question = question_for_row(qrows[0], bank)
        rubric = bank.rubrics.get(qid)
        results, vecs = grader.grade_many([Item(question, rubric, r.answer) for r in qrows], with_answer_vectors=True)
        live = [i for i, v in enumerate(vecs) if v is not None]
        labels = np.full(len(qrows), -1)
        if live:
            labels[live] = cluster(np.stack([vecs[i] for i in live]))
        gv = grader.answer_vectors(graded_by_q.get(qid, []))
        G = np.stack([v for v in gv if v is not None]) if any(v is not None for v in gv) else None
        for number, label in enumerate(sorted(set(labels.tolist()), key=lambda c: (c < 0, c)), start=1):
            ii = [i for i in range(len(qrows)) if labels[i] == label]
            members = [Member(candidate=qrows[i].candidate, line=qrows[i].line,
                              score=None if label < 0 else results[i].score) for i in ii]
            if label < 0:
                rep = 0
            else:
                V = np.stack([vecs[i] for i in ii])
                rep = int(np.argmax((V @ V.T).mean(axis=1)))
            scores = np.array([results[i].score for i in ii]) if label >= 0 else np.zeros(0)
            covered = None
            if G is not None and label >= 0:
                covered = round(float((G @ vecs[ii[rep]]).max()), 4)
            groups.append(AnswerGroup(
                question_id=qid, group=number, size=len(ii),
                representative=members[rep], answer=qrows[ii[rep]].answer if label >= 0 else "",
                members=members, mean_score=round(float(scores.mean()), 2) if len(scores) else None,
                max_score=results[ii[0]].max_score, spread=round(float(scores.std()), 2) if len(scores) else 0.0,
                covered=covered,
            ))
        if progress:
            progress(done + 1, len(by_q))
    _suggest(groups)
    return Groups(source=src.display, answers=len(rows), questions=len(by_q), groups=groups)


def _suggest(groups: list[AnswerGroup]) -> None:
    """Numbers the groups in the order to grade them (module docstring); empty and covered ones last, 0."""
    open_: list[tuple[AnswerGroup, float]] = []
    for g in groups:
        if g.mean_score is None:
            g.why = "empty answers: nothing to grade"
        elif g.covered is not None and g.covered >= COVERED_SIM:
            g.why = f"covered by a graded answer (cosine {g.covered:.2f})"
        else:
            open_.append((g, _uncertainty(np.array([m.score / g.max_score for m in g.members]))))
    open_.sort(key=lambda gu: (-gu[0].size, -gu[1], gu[0].question_id, gu[0].group))
    for rank, (g, uncertainty) in enumerate(open_, start=1):
        g.suggest = rank
        parts = [f"{g.size} answers alike" if g.size > 1 else "an answer unlike the others"]
        if uncertainty >= 0.5:
            parts.append("uncertain zero-shot score")
        if g.covered is not None:
            parts.append(f"nearest graded answer only {g.covered:.2f}")
        g.why = "; ".join(parts)


def write_groups(path: Path, groups: Groups) -> None:
    """One JSON line per group."""
    from grader.fsutil import atomic_write_text

    atomic_write_text(path, "".join(g.model_dump_json() + "\n" for g in groups.groups))
