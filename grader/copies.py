"""Near-identical answers across candidates: shared or copied work a hiring team should see."""

from __future__ import annotations

import hashlib
from collections import defaultdict

import numpy as np
from pydantic import BaseModel

from grader.scoring.text import tokens

# Two answers to the same question whose embeddings are at least this close are listed.
# With all-MiniLM-L6-v2, independent correct answers to one question sit at 0.6-0.9;
# 0.95 and above is the same text lightly edited (words swapped, a sentence added).
NEAR_DUPLICATE = 0.95
# Answers shorter than this many words ("I don't know") are too generic to call copies.
MIN_WORDS = 6
# Reports list at most this many pairs (the closest first) and count the rest: a file where
# hundreds of candidates pasted one answer must not make the report quadratic in size.
MAX_PAIRS = 1000


class CopyPair(BaseModel):
    question_id: str
    candidate_a: str
    candidate_b: str
    similarity: float
    exact: bool


class CopyDetector:
    """Collects answer vectors per question while a batch runs; pairs them up at the end.

    Vectors are kept as float16 (768 bytes per answer for MiniLM), and comparison happens
    within each question only, so the work never grows with the square of the whole file.
    """

    def __init__(self, threshold: float = NEAR_DUPLICATE, max_pairs: int = MAX_PAIRS):
        self.threshold = threshold
        self.max_pairs = max_pairs
        self.total = 0  # pairs found, listed or not (set by pairs())
        self._cands: dict[str, list[str]] = defaultdict(list)
        self._vecs: dict[str, list[np.ndarray]] = defaultdict(list)
        self._digests: dict[str, list[bytes]] = defaultdict(list)

    def add(self, question_id: str, candidate: str, answer: str, vector: np.ndarray | None) -> None:
        words = tokens(answer)
        if len(words) < MIN_WORDS or vector is None:
            return
        self._cands[question_id].append(candidate)
        self._vecs[question_id].append(np.asarray(vector, dtype=np.float16))
        self._digests[question_id].append(hashlib.blake2b(" ".join(words).encode(), digest_size=16).digest())

    def pairs(self) -> list[CopyPair]:
        """The closest pairs (at most max_pairs) above the threshold or exactly equal; sets `total`."""
        import heapq

        keep: list[tuple[float, int, CopyPair]] = []  # min-heap of the best pairs so far
        seen: set[tuple[str, str, str]] = set()
        counter = 0

        def offer(qid: str, cands: list[str], digests: list[bytes], i: int, j: int, sim: float) -> None:
            nonlocal counter
            a, b = sorted((cands[i], cands[j]))
            if a == b or (qid, a, b) in seen:
                return
            seen.add((qid, a, b))
            counter += 1
            exact = digests[i] == digests[j]
            pair = CopyPair(question_id=qid, candidate_a=a, candidate_b=b,
                            similarity=round(1.0 if exact else min(sim, 1.0), 3), exact=exact)
            item = (pair.similarity, -counter, pair)
            if len(keep) < self.max_pairs:
                heapq.heappush(keep, item)
            elif item[:2] > keep[0][:2]:
                heapq.heapreplace(keep, item)

        for qid in sorted(self._vecs):
            cands = self._cands[qid]
            mat = np.stack(self._vecs[qid]).astype(np.float32)
            digests = self._digests[qid]
            for start in range(0, len(cands), 1024):
                sims = mat[start : start + 1024] @ mat.T
                for i_local, row in enumerate(sims):
                    i = start + i_local
                    for j in np.nonzero(row[i + 1 :] >= self.threshold - 1e-6)[0] + i + 1:
                        offer(qid, cands, digests, i, int(j), float(row[j]))
            # Exact copies (same words after case, punctuation and spacing) always count.
            groups: dict[bytes, list[int]] = defaultdict(list)
            for i, d in enumerate(digests):
                groups[d].append(i)
            for idx in groups.values():
                for x in range(len(idx)):
                    for y in range(x + 1, len(idx)):
                        offer(qid, cands, digests, idx[x], idx[y], 1.0)
        self.total = counter
        return sorted((p for _, _, p in keep),
                      key=lambda p: (p.question_id, -p.similarity, p.candidate_a, p.candidate_b))
