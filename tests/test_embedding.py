"""Embedding order and length: token-ordered batches give encode()'s vectors, in input order;
the cache answers lengths without the model; the keyword pre-filter never rules out a match."""

from __future__ import annotations

import numpy as np
import pytest

from grader.embedding import CachedEmbedder, longest_first
from grader.embedding.sentence_transformers import SentenceTransformerEmbedder
from grader.scoring.pipeline import Grader
from grader.scoring.keywords import Vocabulary, find_in_sentence
from grader.text import analyse

TEXTS = [
    "PUT replaces the whole resource; PATCH changes part of it.",
    "x",
    "def f(a: dict[str, list[int]]) -> None: return {k: v[0] for k, v in a.items()}",
    "An index is a B-tree over one or more columns that makes lookups logarithmic instead of a full scan. " * 3,
    "",
    "JWT",
    "{\"score\": 10, \"verdict\": \"strong\"}",
]


class CountingEmbedder:
    """A stand-in inner embedder that records what it was asked (lengths by characters)."""

    name = "counting"
    counts_tokens = True
    has_terms = False

    def __init__(self):
        self.length_calls: list[list[str]] = []
        self.embed_calls: list[list[str]] = []

    def lengths(self, texts):
        self.length_calls.append(list(texts))
        return [len(t) for t in texts]

    def embed(self, texts):
        self.embed_calls.append(list(texts))
        return np.stack([np.full(4, float(len(t) + 1), dtype=np.float32) for t in texts])


def test_longest_first_is_stable():
    assert longest_first([3, 5, 3, 5, 0]) == [1, 3, 0, 2, 4]


def test_token_ordered_embed_equals_plain_encode_in_input_order(settings):
    emb = SentenceTransformerEmbedder(settings.embedding_model, threads=settings.thread_count())
    model = emb._load()
    got = emb.embed(TEXTS)
    want = model.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    assert got.shape == want.shape
    assert np.allclose(got, want, atol=1e-5)
    lengths = emb.lengths(TEXTS)
    assert lengths == [len(x) for x in model.tokenizer(TEXTS, truncation=True, max_length=model.max_seq_length)["input_ids"]]
    # The code line is shorter in characters than the long prose, yet longer in tokens than
    # the first sentence: why batches go by tokens, not characters.
    assert lengths[2] > lengths[0] and len(TEXTS[2]) < len(TEXTS[3])
    assert max(lengths) <= model.max_seq_length


def test_cached_lengths_ask_the_inner_embedder_only_for_new_texts(tmp_path):
    inner = CountingEmbedder()
    cached = CachedEmbedder(inner, tmp_path / "c.sqlite")
    cached.embed(["alpha", "beta gamma"])
    assert cached.lengths(["alpha", "beta gamma"]) == [0, 0]
    assert inner.length_calls == []  # a warm run measures nothing, so never loads a model
    assert cached.lengths(["alpha", "delta!"]) == [0, 6]
    assert inner.length_calls == [["delta!"]]


def test_embed_texts_sends_longest_first_by_the_embedders_own_lengths(tmp_path):
    class ByWords(CountingEmbedder):
        def lengths(self, texts):
            return [len(t.split()) for t in texts]

    inner = ByWords()
    texts = ["aaaaaaaaaaaaaaaaaaaa", "b b b", "c c", "d d d d", "c c"]
    vecs = Grader(embedder=inner).embed_texts(texts)
    assert inner.embed_calls == [["d d d d", "b b b", "c c", "aaaaaaaaaaaaaaaaaaaa"]]
    assert set(vecs) == set(texts)
    assert vecs["b b b"][0] == 6.0  # each text keeps its own vector


@pytest.mark.parametrize("answer", [
    "PUT is idempotnet and replaces the resource; a PATCH is a partial update.",
    "No. Not really: it is not the case that an ORM is a database.",
    "Indices speed up reads but slow down writes, and the query planner may ignore them.",
])
def test_vocabulary_never_rules_out_a_term_a_sentence_shows(bank, answer):
    texts = [answer] + [q.model_answer for q in bank.questions.values()]
    terms = {t for r in bank.rubrics.values() for c in r.concepts for t in c.terms}
    terms |= {t for r in bank.rubrics.values() for m in r.misconceptions for t in m.terms}
    terms |= {"no", "not the", "idempotent"}
    checked = 0
    for text in texts:
        sentences = analyse(text)
        vocab = Vocabulary(sentences)
        for term in terms:
            shown = any(find_in_sentence(term, s) or find_in_sentence(term, s, ordered=True) for s in sentences)
            if shown:
                checked += 1
                assert vocab.may_show(term), (term, text)
    assert checked > 100
    vocab = Vocabulary(analyse(answer))
    assert not vocab.may_show("message broker")
