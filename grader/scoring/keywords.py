"""Rubric terms found in an answer: inflection-, typo- and negation-aware phrase matching."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from itertools import product

from rapidfuzz.distance import Levenshtein

from grader.text import NEGATIONS, STOPWORDS, Sentence, Token, term_stems, tokens

# A phrase matches when its words fall inside this many tokens beyond the phrase's own
# length, so "replaces the entire stored resource" still shows "replace entire resource".
SLACK = 4
# Negations this many tokens before a misconception's words cancel it
# ("it is not true that PATCH replaces...").
NEGATION_LOOKBACK = 4
# Products of candidate positions above this are not searched exhaustively (an answer
# repeating one word hundreds of times must not make matching quadratic or worse).
MAX_COMBINATIONS = 4096


@dataclass(frozen=True)
class Hit:
    term: str
    sentence: Sentence
    start: int
    end: int


@lru_cache(maxsize=50_000)
def _compile(term: str) -> tuple[tuple[str, str], ...]:
    return term_stems(term)


def _typo_budget(word: str) -> int:
    # Short words have close real neighbours ("insert"/"invert"), so only longer ones bend.
    if len(word) < 7:
        return 0
    return 1 if len(word) < 10 else 2


@lru_cache(maxsize=500_000)
def _fuzzy(tok_raw: str, tok_stem: str, raw: str, st: str) -> bool:
    k = _typo_budget(raw)
    # Typos rarely hit the first letter, and requiring it halves the false friends.
    if k == 0 or len(tok_raw) < 6 or tok_raw[0] != raw[0]:
        return False
    if Levenshtein.distance(tok_raw, raw, score_cutoff=k) <= k:
        return True
    # One stem extending the other is a relative, not a typo ("produce" is no "productivity").
    if tok_stem.startswith(st) or st.startswith(tok_stem):
        return False
    # Stems are shorter than their words, so their budget is their own: two edits in the six
    # letters of "intent" made "identical" a typo of "intentionally".
    k = _typo_budget(st)
    return k > 0 and Levenshtein.distance(tok_stem, st, score_cutoff=k) <= k


def word_matches(tok: Token, raw: str, st: str) -> bool:
    """Whether an answer token shows a term word: same stem, or a small typo of it."""
    if tok.stem == st or tok.raw == raw:
        return True
    return _fuzzy(tok.raw, tok.stem, raw, st)


def word_positions(raw: str, st: str, sentence: Sentence) -> list[int]:
    """Where one term word (raw form, stem) shows in a sentence: same stem or form, else a
    small typo of it, else (for a stopword) the raw token itself."""
    # Each list is in token order already; only a word found by both forms needs a merge.
    by_stem = sentence.by_form.get(st)
    by_raw = sentence.by_form.get(raw) if raw != st else None
    if by_stem and by_raw:
        return sorted(set(by_stem) | set(by_raw))
    found = by_stem or by_raw or []
    if not found and _typo_budget(raw):
        found = [t.pos for t in sentence.by_initial.get(raw[0], ()) if _fuzzy(t.raw, t.stem, raw, st)]
    if not found and raw in STOPWORDS:
        # A term made only of stopwords ("no") can still match the raw tokens (a content
        # word would have been in by_form already).
        found = [i for i, t in enumerate(sentence.all_tokens) if t == raw]
    return found


def shows_word(raw: str, st: str, sentence: Sentence) -> bool:
    """Whether `word_positions` would find the word (without listing where)."""
    if st in sentence.by_form or raw in sentence.by_form:
        return True
    if _typo_budget(raw) and any(_fuzzy(t.raw, t.stem, raw, st) for t in sentence.by_initial.get(raw[0], ())):
        return True
    return raw in STOPWORDS and raw in sentence.all_tokens


# A claim of what a thing *is* needs that verb in the answer too: "POST needs an idempotency
# key" is no "POST is idempotent".
COPULAS = frozenset({"is", "are", "was", "were", "be", "been", "being"})
# Auxiliaries of the passive voice: "the hash is decrypted" says "decrypt the hash".
PASSIVE_AUX = COPULAS | {"get", "gets", "got", "gotten"}


def _passive(sentence: Sentence, first: int, second: int) -> bool:
    """Whether a two-word claim stands in the passive: its second word, then an auxiliary and
    the first word as a participle ("hash ... is decrypted" for "decrypt the hash")."""
    toks = sentence.all_tokens
    return second < first and toks[first - 1] in PASSIVE_AUX and toks[first].endswith(("ed", "en"))


def find_in_sentence(term: str, sentence: Sentence, *, ordered: bool = False) -> Hit | None:
    """The tightest occurrence of a term's words in one sentence, or None.

    With `ordered`, the words must appear in the term's order: a claim's subject before its
    verb, so "use PUT to replace a document and PATCH to modify" is not "PATCH replaces"; a
    two-word claim may also stand in the passive ("the salted hash is decrypted").
    """
    words = _compile(term)
    if not words:
        return None
    positions: list[list[int]] = []
    for raw, st in words:
        found = word_positions(raw, st, sentence)
        if not found:
            return None
        positions.append(found)
    if len(positions) == 1:
        p = positions[0][0]
        return Hit(term, sentence, p, p)
    window = len(words) + SLACK
    combos = 1
    for p in positions:
        combos *= len(p)
    if combos > MAX_COMBINATIONS:
        # Keep the first few positions of each word, as many as keep the product bounded
        # (8 each up to four words; fewer for longer terms, so 10 words repeated hundreds
        # of times cost thousands of combinations, not 8**10).
        cap = 8
        while cap > 1 and cap ** len(positions) > MAX_COMBINATIONS:
            cap -= 1
        positions = [p[:cap] for p in positions]
    best: tuple[int, int] | None = None
    for combo in product(*positions):
        if len(set(combo)) < len(combo):
            continue
        if ordered and any(a > b for a, b in zip(combo, combo[1:])) and not (
                len(combo) == 2 and _passive(sentence, combo[0], combo[1])):
            continue
        lo, hi = min(combo), max(combo)
        if hi - lo < window and (best is None or hi - lo < best[1] - best[0]):
            best = (lo, hi)
    if best is None:
        return None
    return Hit(term, sentence, best[0], best[1])


@lru_cache(maxsize=50_000)
def _negation_context(term: str) -> tuple[int, int]:
    """(negation words in the term itself, stopwords the term starts with)."""
    toks = tokens(term)
    content = {raw for raw, _ in term_stems(term)}
    lead = 0
    while lead < len(toks) and toks[lead] not in content:
        lead += 1
    # A claim may itself contain a negation word ("403 wrong password"); that one does not
    # cancel it, or the misconception could never be found.
    return sum(1 for t in toks if t in NEGATIONS), lead


_OR = frozenset({"or", "nor"})


def is_negated(hit: Hit) -> bool:
    """Whether a negation stands inside the hit or just before it (beyond the term's own).

    "Just before" counts from the term's first word, stopwords included: in "it is wrong to
    say that just escape the quotes" the term "just escape the quotes" starts at "just".
    """
    own, lead = _negation_context(hit.term)
    toks = hit.sentence.all_tokens
    lo = max(0, hit.start - lead - NEGATION_LOOKBACK)
    # A denial reaches every item of an "or" list: "not for reverse foreign keys or many-to-many"
    # denies both, so the reach starts again before the "or".
    for k in range(hit.start - lead - 1, lo - 1, -1):
        if toks[k] in _OR:
            lo = max(0, k - NEGATION_LOOKBACK - 1)
            break
    found = sum(1 for t in toks[lo : hit.end + 1] if t in NEGATIONS)
    return found > own


# Words after a wrong claim that reject it: "adding an index won't fix it", "escaping quotes by
# hand isn't the fix", "a bigger pool does not help". Checked only after a misconception's term,
# within its clause's next few words; "escape quotes, not parameterized queries" rejects nothing.
_REJECTED = re.compile(r"^(?:\S+ ){0,3}?(?:(?:will|would|does|do|did|is|are|can|could) )?not (?:\S+ )?"
                       r"(?:fix|fixes|help|helps|solve|solves|prevent|prevents|enough|the fix|a fix|the answer|the solution)\b")
REJECTION_REACH = 7


def is_rejected(hit: Hit) -> bool:
    """Whether the words right after a claim reject it ("adding an index won't fix it")."""
    after = hit.sentence.all_tokens[hit.end + 1:hit.end + 1 + REJECTION_REACH]
    return _REJECTED.search(" ".join(after)) is not None


class Vocabulary:
    """An answer's sentences as one, to rule terms out before any sentence is searched: a
    term with a word shown nowhere in the answer cannot match one sentence."""

    def __init__(self, sentences: list[Sentence]):
        by_form: dict[str, list[int]] = {}
        by_initial: dict[str, list[Token]] = {}
        for s in sentences:
            for k, pos in s.by_form.items():
                by_form.setdefault(k, []).extend(pos)
            for k, toks in s.by_initial.items():
                by_initial.setdefault(k, []).extend(toks)
        # Positions are each sentence's own; only whether a word is found counts here.
        self._all = Sentence("", tuple(t for s in sentences for t in s.all_tokens),
                             tuple(t for s in sentences for t in s.content), by_form, by_initial)

        # Terms and their words recur across a rubric's concepts and misconceptions; each is
        # looked up once per answer.
        self._seen: dict[tuple[str, str], bool] = {}
        self._terms: dict[str, bool] = {}

    def may_show(self, term: str) -> bool:
        """False when the term cannot match any sentence of the answer."""
        known = self._terms.get(term)
        if known is None:
            known = self._terms[term] = self._may_show(term)
        return known

    def _may_show(self, term: str) -> bool:
        words = _compile(term)
        if not words:
            return False
        seen = self._seen
        for word in words:
            known = seen.get(word)
            if known is None:
                known = seen[word] = shows_word(word[0], word[1], self._all)
            if not known:
                return False
        return True


@lru_cache(maxsize=50_000)
def _says_is(term: str) -> bool:
    return any(t in COPULAS for t in tokens(term))


def _verb_kept(hit: Hit) -> bool:
    return not _says_is(hit.term) or any(t in COPULAS for t in hit.sentence.all_tokens[hit.start:hit.end + 1])


def find_terms(
    terms: list[str], sentences: list[Sentence], *, claims: bool = False, vocab: Vocabulary | None = None
) -> Hit | None:
    """The first sentence (in answer order) showing any of the terms.

    With `claims` (misconceptions), words must come in order and a negated hit is ignored.
    """
    # `vocab` may cover more sentences than these (a superset rules out no less safely).
    vocab = vocab or Vocabulary(sentences)
    terms = [t for t in terms if vocab.may_show(t)]
    if not terms:
        return None
    for sentence in sentences:
        if not claims:
            for term in terms:
                hit = find_in_sentence(term, sentence)
                if hit:
                    return hit
            continue
        hits = [h for h in (find_in_sentence(t, sentence, ordered=True) for t in terms) if h and _verb_kept(h)]
        # A claim negated as a whole is not stated by its parts: in "it is not true that
        # an ORM is a kind of database", the term "kind of database" is part of the negated one.
        negated = [(h.start, h.end) for h in hits if is_negated(h)]
        for h in hits:
            if not is_negated(h) and not any(lo <= h.start and h.end <= hi for lo, hi in negated) \
                    and not is_rejected(h):
                return h
    return None
