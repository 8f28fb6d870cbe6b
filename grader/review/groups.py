"""A question's answers grouped by meaning for its review page, computed on demand and cached.

The groups are those of `grader groups` (grader/batch/groups.py `cluster`) over the whole-answer
vectors grading computes; embedding a question's few hundred answers takes seconds on two cores,
so each question's groups are computed once: in the background from start-up (`prefetch`), or
when its page is opened first, whichever comes first."""

from __future__ import annotations

import threading

from pydantic import BaseModel

from grader.review.run import ReviewRun


class ReviewGroup(BaseModel):
    number: int
    members: list[int]  # record indices, the representative first
    empty: bool = False


class GroupCache:
    """Groups per question id; the embedder is made on first use (no model load at start-up)."""

    def __init__(self, run: ReviewRun, make_grader):
        self.run = run
        self._make_grader = make_grader
        self._grader = None
        self._cache: dict[str, list[ReviewGroup]] = {}
        self._lock = threading.Lock()

    def groups(self, question_id: str) -> list[ReviewGroup]:
        with self._lock:
            if question_id not in self._cache:
                self._cache[question_id] = self._compute(question_id)
            return self._cache[question_id]

    def prefetch(self) -> None:
        """Every question's groups, one at a time (run in a daemon thread): the model loads while
        the reviewer reads the ranking, not when they open a question."""
        try:
            for question_id in self.run.questions:
                self.groups(question_id)
        except Exception:  # noqa: BLE001 - the page computes (and reports) it again when opened
            pass

    def _compute(self, question_id: str) -> list[ReviewGroup]:
        import numpy as np

        from grader.batch.groups import cluster

        idx = self.run.of_question(question_id)
        texts = [self.run.records[i].answer for i in idx]
        if self._grader is None:
            self._grader = self._make_grader()
        vecs = self._grader.answer_vectors(texts)
        live = [k for k, v in enumerate(vecs) if v is not None]
        out: list[ReviewGroup] = []
        if live:
            labels = cluster(np.stack([vecs[k] for k in live]))
            for label in sorted(set(labels.tolist())):
                ks = [live[j] for j in range(len(live)) if labels[j] == label]
                V = np.stack([vecs[k] for k in ks])
                rep = int(np.argmax((V @ V.T).mean(axis=1)))
                ks = [ks[rep]] + ks[:rep] + ks[rep + 1:]
                out.append(ReviewGroup(number=len(out) + 1, members=[idx[k] for k in ks]))
        empty = [idx[k] for k, v in enumerate(vecs) if v is None]
        if empty:
            out.append(ReviewGroup(number=len(out) + 1, members=empty, empty=True))
        return out
