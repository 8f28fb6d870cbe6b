"""Near-identical answers across candidates: shared or copied work a hiring team should see."""

from __future__ import annotations

import hashlib
import tempfile
from array import array
from collections import defaultdict
from pathlib import Path

import numpy as np

from grader.models import CopyPair
from grader.text import tokens

# Two answers to the same question whose embeddings are at least this close are listed.
# With all-MiniLM-L6-v2, independent correct answers to one question sit at 0.6-0.9;
# 0.95 and above is the same text lightly edited (words swapped, a sentence added).
NEAR_DUPLICATE = 0.95
# Answers shorter than this many words ("I don't know") are too generic to call copies.
MIN_WORDS = 6
# Reports list at most this many pairs (the closest first) and count the rest: a file where
# hundreds of candidates pasted one answer must not make the report quadratic in size.
MAX_PAIRS = 1000


class CopyDetector:
    """Collects answer vectors per question while a batch runs; pairs them up at the end.

    Vectors go to one temporary file per question as float16 (768 bytes per answer for
    MiniLM), written in blocks, so memory holds only a candidate number and a 16-byte digest
    per answer: a 50,000-answer batch would otherwise keep ~45 MB of vectors.  Comparison
    happens within each question only, so the work never grows with the square of the file.
    """

    # Vector bytes kept per question before they are appended to its file.
    BLOCK_BYTES = 16 * 1024

    def __init__(self, threshold: float = NEAR_DUPLICATE, max_pairs: int = MAX_PAIRS):
        self.threshold = threshold
        self.max_pairs = max_pairs
        self.total = 0  # pairs found, listed or not (set by pairs())
        self._names: dict[str, int] = {}  # candidate -> number
        self._cands: dict[str, array] = defaultdict(lambda: array("i"))
        self._digests: dict[str, bytearray] = defaultdict(bytearray)
        self._pending: dict[str, bytearray] = defaultdict(bytearray)
        self._files: dict[str, Path] = {}
        self._dir: tempfile.TemporaryDirectory | None = None
        self._dim = 0

    def add(self, question_id: str, candidate: str, answer: str, vector: np.ndarray | None) -> None:
        words = tokens(answer)
        if len(words) < MIN_WORDS or vector is None:
            return
        vec = np.asarray(vector, dtype="<f2").ravel()
        self._dim = self._dim or vec.shape[0]
        self._cands[question_id].append(self._names.setdefault(candidate, len(self._names)))
        self._digests[question_id] += hashlib.blake2b(" ".join(words).encode(), digest_size=16).digest()
        buf = self._pending[question_id]
        buf += vec.tobytes()
        if len(buf) >= self.BLOCK_BYTES:
            self._spill(question_id)

    def _spill(self, qid: str) -> None:
        buf = self._pending[qid]
        if not buf:
            return
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="grader-copies-")
        path = self._files.setdefault(qid, Path(self._dir.name) / f"{len(self._files)}.f16")
        with open(path, "ab") as fh:
            fh.write(buf)
        buf.clear()

    def _vectors(self, qid: str) -> np.ndarray:
        """One question's vectors, float32, read back from its file."""
        self._spill(qid)
        return np.fromfile(self._files[qid], dtype="<f2").reshape(-1, self._dim).astype(np.float32)

    def pairs(self) -> list[CopyPair]:
        """The closest pairs (at most max_pairs) above the threshold or exactly equal; sets `total`.

        Pairs are counted with numpy and only those that can enter the list become objects, so
        a file where thousands of candidates share answers (millions of pairs) costs memory in
        proportion to the answers, not to the pairs.
        """
        import heapq

        keep: list[tuple[float, int, CopyPair]] = []  # min-heap of the best pairs so far
        counter = 0
        thr = self.threshold - 1e-6

        def offer(qid: str, cands: list[str], digests: list[bytes], i: int, j: int, sim: float, n: int) -> None:
            # n: this pair's number in the order pairs are found (ties keep the earlier one).
            a, b = sorted((cands[i], cands[j]))
            exact = digests[i] == digests[j]
            similarity = round(1.0 if exact else min(sim, 1.0), 3)
            item = (similarity, -n)
            if len(keep) < self.max_pairs:
                heapq.heappush(keep, (*item, CopyPair(question_id=qid, candidate_a=a, candidate_b=b,
                                                       similarity=similarity, exact=exact)))
            elif item > keep[0][:2]:
                heapq.heapreplace(keep, (*item, CopyPair(question_id=qid, candidate_a=a, candidate_b=b,
                                                          similarity=similarity, exact=exact)))

        def lowest() -> float | None:
            # A pair enters a full list only with a (rounded) similarity above its lowest.
            return keep[0][0] if len(keep) >= self.max_pairs else None

        names = list(self._names)
        for qid in sorted(self._cands):
            cid = np.frombuffer(self._cands[qid], dtype=np.int32)
            cands = [names[k] for k in cid]
            mat = self._vectors(qid)
            raw = bytes(self._digests[qid])
            digests = [raw[k:k + 16] for k in range(0, len(raw), 16)]
            dig_id = {d: k for k, d in enumerate(dict.fromkeys(digests))}
            did = np.array([dig_id[d] for d in digests])
            for start in range(0, len(cands), 1024):
                sims = mat[start : start + 1024] @ mat.T
                for i_local, row in enumerate(sims):
                    i = start + i_local
                    js = np.nonzero(row[i + 1 :] >= thr)[0] + i + 1
                    js = js[cid[js] != cid[i]]  # one candidate's own answers are no pair
                    if not len(js):
                        continue
                    low = lowest()
                    if low is None:
                        chances = range(len(js))
                    elif low >= 1.0:
                        chances = ()
                    else:  # exact copies count as 1.0; others need a cosine that rounds above `low`
                        chances = np.nonzero((did[js] == did[i]) | (row[js] > low - 0.0006))[0]
                    for k in chances:
                        offer(qid, cands, digests, i, int(js[k]), float(row[js[k]]), counter + int(k) + 1)
                    counter += len(js)
            # Exact copies (same words after case, punctuation and spacing) always count; those
            # close enough to be found above are not counted twice.
            groups: dict[bytes, list[int]] = defaultdict(list)
            for i, d in enumerate(digests):
                groups[d].append(i)
            for idx in groups.values():
                if len(idx) < 2:
                    continue
                sub = mat[idx] @ mat[idx].T
                for x in range(len(idx)):
                    ys = np.arange(x + 1, len(idx))
                    ys = ys[(sub[x, ys] < thr) & (cid[np.array(idx)[ys]] != cid[idx[x]])]
                    low = lowest()
                    if len(ys) and (low is None or low < 1.0):
                        for k, y in enumerate(ys):
                            offer(qid, cands, digests, idx[x], idx[int(y)], 1.0, counter + k + 1)
                    counter += len(ys)
        self.total = counter
        return sorted((p for _, _, p in keep),
                      key=lambda p: (p.question_id, -p.similarity, p.candidate_a, p.candidate_b))
