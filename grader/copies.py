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

    def __init__(self, threshold: float = NEAR_DUPLICATE):
        self.threshold = threshold
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
        """Every pair above the threshold or exactly equal (after case and whitespace), sorted."""
        out: list[CopyPair] = []
        for qid in sorted(self._vecs):
            cands = self._cands[qid]
            mat = np.stack(self._vecs[qid]).astype(np.float32)
            digests = self._digests[qid]
            block = 1024
            for start in range(0, len(cands), block):
                sims = mat[start : start + block] @ mat.T
                for i_local, row in enumerate(sims):
                    i = start + i_local
                    for j in np.nonzero(row[i + 1 :] >= self.threshold - 1e-6)[0] + i + 1:
                        self._add(out, qid, cands, digests, i, int(j), float(row[j]))
            # Exact copies always count, whatever the embedding says.
            by_digest: dict[bytes, list[int]] = defaultdict(list)
            for i, d in enumerate(digests):
                by_digest[d].append(i)
            for idx in by_digest.values():
                for a in range(len(idx)):
                    for b in range(a + 1, len(idx)):
                        self._add(out, qid, cands, digests, idx[a], idx[b], 1.0)
        seen, unique = set(), []
        for p in out:
            k = (p.question_id, p.candidate_a, p.candidate_b)
            if k not in seen:
                seen.add(k)
                unique.append(p)
        return sorted(unique, key=lambda p: (p.question_id, -p.similarity, p.candidate_a, p.candidate_b))

    @staticmethod
    def _add(out, qid, cands, digests, i, j, sim):
        if cands[i] == cands[j]:
            return
        a, b = sorted((cands[i], cands[j]))
        out.append(CopyPair(question_id=qid, candidate_a=a, candidate_b=b,
                            similarity=round(min(sim, 1.0), 3), exact=digests[i] == digests[j]))
