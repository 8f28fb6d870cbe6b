"""Text normalisation, sentence splitting, tokens and stems shared by every signal."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

import regex
import snowballstemmer

_STEMMER = snowballstemmer.stemmer("english")

# Snowball leaves Latin/Greek plurals apart from their singulars ("indices" -> "indic").
IRREGULAR = {
    "indices": "index",
    "indexes": "index",
    "matrices": "matrix",
    "vertices": "vertex",
    "analyses": "analysis",
    "criteria": "criterion",
    "schemata": "schema",
    "schemas": "schema",
    "queries": "query",
    "caches": "cache",
    "caching": "cache",
    "cached": "cache",
    "proxies": "proxy",
    "children": "child",
    "men": "man",
    "data": "data",
}

STOPWORDS = frozenset(
    """a an the and or but if then of to in on at by for with from as is are was were be been
    being it its this that these those there their they them it's i you we he she our your my
    do does did doing have has had having will would shall should can could may might must
    so such than too very just also which who whom what when where why how into onto about
    over under again further once here all any both each few more most other some own same
    only s t d ll m o re ve y up down out off own because while until""".split()
)

NEGATIONS = frozenset(
    "not no never nor neither cannot without unlike instead false wrong myth misconception "
    "incorrect untrue".split()
)

_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_NT = re.compile(r"\b(\w+)n['’]t\b")
_TOKEN = re.compile(r"[a-z0-9]+")
_SENT_SPLIT = re.compile(r"(?<=[.!?;])\s+|\n+|(?<=:)\s+(?=[-*•])|\s+[-*•]\s+")


# Control, format, private-use and unassigned characters (newline and tab kept).
_UNPRINTABLE = regex.compile(r"[\p{C}--[\n\t]]", regex.V1)


# Rubric statements, exemplars and clauses come back for every answer to a question; the
# caches hold short texts only, so a hostile answer cannot fill memory.
CACHED_TEXT = 2_000
_TEXT_CACHE = 65_536


def normalise(text: str) -> str:
    """NFKC, no zero-width or control characters, lowercase, contractions opened."""
    return _normalise_cached(text) if len(text) <= CACHED_TEXT else _normalise(text)


@lru_cache(maxsize=_TEXT_CACHE)
def _normalise_cached(text: str) -> str:
    return _normalise(text)


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate(_ZERO_WIDTH)
    text = _UNPRINTABLE.sub(" ", text).lower()
    text = text.replace("can't", "can not").replace("won't", "will not")
    text = text.replace("can’t", "can not").replace("won’t", "will not")
    return _NT.sub(r"\1 not", text)


def clean(text: str) -> str:
    """The text as shown in evidence: NFKC, printable, whitespace collapsed."""
    return _clean_cached(text) if len(text) <= CACHED_TEXT else _clean(text)


@lru_cache(maxsize=_TEXT_CACHE)
def _clean_cached(text: str) -> str:
    return _clean(text)


def _clean(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate(_ZERO_WIDTH)
    return " ".join(_UNPRINTABLE.sub(" ", text).split())


# Abbreviations whose full stop ends no sentence ("signed with a secret (e.g. HS256)").
_ABBREVIATION_END = re.compile(r"(?:^|[\s(])(?:e\.g|i\.e|vs|cf|approx|incl|esp)\.$", re.IGNORECASE)


def split_sentences(text: str) -> list[str]:
    """Sentences (or bullet items / lines) of a text, cleaned, empty ones dropped."""
    text = unicodedata.normalize("NFKC", text).translate(_ZERO_WIDTH)
    parts: list[str] = []
    for p in _SENT_SPLIT.split(text):
        if parts and _ABBREVIATION_END.search(parts[-1]) and p and not p.startswith(("\n", "-", "*", "•")):
            parts[-1] = f"{parts[-1]} {p}"
        else:
            parts.append(p)
    out = []
    for p in parts:
        c = clean(p).strip(" -*•")
        if c:
            out.append(c)
    return out


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """Inflection-insensitive form of one lowercase token."""
    if word in IRREGULAR:
        return IRREGULAR[word]
    return _STEMMER.stemWord(word)


def tokens(text: str) -> list[str]:
    """Lowercase word tokens of normalised text (negations kept, punctuation dropped)."""
    return _TOKEN.findall(normalise(text))


def normalised_tokens(normalised: str) -> list[str]:
    """`tokens` of a text already through `normalise` (for callers that need both)."""
    return _TOKEN.findall(normalised)


class Token(NamedTuple):
    # A tuple rather than a frozen dataclass: one is made per answer word, and tuples
    # are several times cheaper to build.
    raw: str
    stem: str
    pos: int  # index among all tokens of the sentence, stopwords included


@dataclass(frozen=True)
class Sentence:
    text: str
    all_tokens: tuple[str, ...]
    content: tuple[Token, ...]  # stopwords removed, positions kept
    # Lookup tables so a term word costs a dict lookup, not a scan of the sentence.
    by_form: dict[str, list[int]] = field(default_factory=dict, compare=False)
    by_initial: dict[str, list[Token]] = field(default_factory=dict, compare=False)


# Token(...) goes through a Python-level __new__; building the tuple directly skips it.
_new_token = tuple.__new__


def analyse(text: str) -> list[Sentence]:
    """Split a text into sentences with their content tokens and stems."""
    if len(text) <= CACHED_TEXT:
        return list(_analyse_cached(text))
    return _analyse(text)


@lru_cache(maxsize=_TEXT_CACHE)
def _analyse_cached(text: str) -> tuple[Sentence, ...]:
    # Sentences are shared between callers: nothing may change them (none does).
    return tuple(_analyse(text))


def _analyse(text: str) -> list[Sentence]:
    result = []
    for s in split_sentences(text):
        toks = tokens(s)
        content = tuple(
            _new_token(Token, (t, stem(t), i)) for i, t in enumerate(toks) if t not in STOPWORDS
        )
        by_form: dict[str, list[int]] = {}
        by_initial: dict[str, list[Token]] = {}
        for tok in content:
            by_form.setdefault(tok.stem, []).append(tok.pos)
            if tok.raw != tok.stem:
                by_form.setdefault(tok.raw, []).append(tok.pos)
            by_initial.setdefault(tok.raw[0], []).append(tok)
        result.append(Sentence(s, tuple(toks), content, by_form, by_initial))
    return result


def term_stems(term: str) -> tuple[tuple[str, str], ...]:
    """(raw, stem) pairs of a rubric term's content words; all words if all are stopwords."""
    toks = tokens(term)
    content = [t for t in toks if t not in STOPWORDS] or toks
    return tuple((t, stem(t)) for t in content)
