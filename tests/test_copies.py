"""Copied and shared answers across candidates, with real embeddings."""

import numpy as np

from grader.batch.copies import CopyDetector

BASE = ("An index is a separate data structure, usually a B-tree, that lets the database find rows "
        "by a column value without scanning the whole table; reads get faster but every write must "
        "also update the index, and it takes extra storage.")
EDITED = BASE.replace("usually a B-tree", "typically a B-tree").replace("extra storage", "additional storage")
OTHER = "Indexes speed up lookups, like the index at the back of a book, but they slow down inserts."


def test_near_identical_and_exact_pairs_within_each_question(grader_):
    texts = [BASE, EDITED, OTHER, BASE.upper(), BASE]
    vecs = grader_.answer_vectors(texts)
    d = CopyDetector()
    d.add("database-indexes", "ann", texts[0], vecs[0])
    d.add("database-indexes", "bob", texts[1], vecs[1])
    d.add("database-indexes", "cid", texts[2], vecs[2])
    d.add("database-indexes", "dan", texts[3], vecs[3])
    d.add("docker", "eve", texts[4], vecs[4])  # same text, other question: not a pair
    pairs = {(p.candidate_a, p.candidate_b): p for p in d.pairs()}
    assert ("ann", "bob") in pairs and not pairs[("ann", "bob")].exact
    assert pairs[("ann", "dan")].exact
    assert not any("cid" in k for k in pairs) and not any("eve" in k for k in pairs)
    assert d.total == len(pairs) == 3


def test_short_generic_answers_are_not_copies():
    d = CopyDetector()
    v = np.ones(4) / 2
    d.add("q", "a", "I don't know.", v)
    d.add("q", "b", "I don't know.", v)
    assert d.pairs() == []


def test_listed_pairs_are_capped_and_counted():
    d = CopyDetector(max_pairs=10)
    v = np.ones(4) / 2
    for i in range(30):
        d.add("q", f"c{i:02d}", "the very same pasted answer of several words", v)
    assert len(d.pairs()) == 10 and d.total == 30 * 29 // 2
