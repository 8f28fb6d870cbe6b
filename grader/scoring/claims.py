"""Claims: an answer's clauses with what each is about and how firmly it is said.

A concept is a statement about something ("PUT replaces the whole resource"), so its terms
show it only in a clause that is about that subject, affirmed, not hedged and not put in
someone else's mouth.  This module reads those properties off the text; the rubric scorer
decides what they mean for credit and misconceptions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from grader.models import Subject
from grader.text import STOPWORDS, Sentence, analyse, normalise, tokens

# Clause boundaries inside a sentence: semicolons, a contrast word, or "and"/"," followed by
# a new subject (checked by the caller, which knows the subjects).
_CONTRAST = re.compile(r"\s*;\s*|,?\s+\b(?:but|while|whereas|whilst|however|although|though)\b\s*|\s+\u2014\s+|\s+-\s+",
                       re.IGNORECASE)
_JOIN = re.compile(r",?\s+\b(?:and|or|whereas)\b\s+|,\s+", re.IGNORECASE)

# A piece after "and" or a comma starts a new clause when a subject is named within its
# first SUBJECT_REACH words ("and python manage.py migrate applies them").
SUBJECT_REACH = 5
# Words that make a clause a guess rather than a claim.  "might" and "could" are left out:
# "PATCH might not be idempotent" is a precise, correct claim; not knowing is a guess only in
# the first person ("401 when we don't know who you are" is a claim).
HEDGES = (
    "maybe", "perhaps", "possibly", "i guess", "not sure", "i do not know", "i have no idea", "or something",
    "i am not certain", "not certain", "i forget", "no clue", "just guessing", "some kind of", "something like that",
)
# Words that put a claim in someone else's mouth: "some people think PATCH replaces...".
ATTRIBUTIONS = (
    "some people", "some think", "some say", "some believe", "people think", "people say", "people believe",
    "people often", "mistake", "misconception", "myth", "fallacy", "mistakenly",
    # A claim rejected as a whole: "it is not true that ...".
    "not true that", "false that", "untrue that", "not the case that", "wrong that", "incorrect that",
    "wrong to say", "incorrect to say", "not correct that",
    "contrary to", "is often confused", "a common belief", "many think", "many people",
    "often claimed", "often said",
)
# Words after which a subject is the thing contrasted or acted on, not the clause's subject.
_ARTICLES = frozenset({"a", "an", "the"})
_CONTRASTED_BY = frozenset({"unlike", "than", "versus", "vs", "not", "no", "without",
                            # After a preposition a subject is an object: "talks to the models".
                            "to", "with", "from", "of", "into", "onto", "on", "for", "by", "in", "about", "via"})
# Contrast words that reach past a describing word or two: "compared with a *full* virtual
# machine", "unlike a *classic* session".
_CONTRASTED_FAR = frozenset({"unlike", "than", "versus", "vs"})
CONTRAST_REACH = 2
# ... except when the preposition opens the clause: "With PUT you send ...", "For PATCH, ..."
# name the clause's topic.
_TOPIC_BY = frozenset({"with", "for", "in", "on", "by", "via"})
_CONTRASTED_BY_TWO = frozenset({("instead", "of"), ("opposed", "to"), ("compared", "to"), ("compared", "with"),
                                ("rather", "than")})
_TAUTOLOGY = re.compile(r"\b([a-z][\w-]*)\s+(?:is|are|means)\s+(?:just\s+|simply\s+|basically\s+)?(?:an?\s+|the\s+)?\1\b")


# "ORM is object-relational mapping", "MVT stands for Model View Template": a name spelled out,
# with nothing said beside it, says no more than "PUT is PUT".
_SPELLS = frozenset({"is", "are", "means", "stands"})
_SPELL_FILLER = frozenset({"for", "a", "an", "the", "just", "simply", "basically", "do", "does", "mean", "means",
                           "stand", "stands"})
ACRONYM_LETTERS = (2, 5)


def _spelled_out(toks: list[str]) -> bool:
    for i, t in enumerate(toks[:-1]):
        if t in STOPWORDS or toks[i + 1] not in _SPELLS or not ACRONYM_LETTERS[0] <= len(t) <= ACRONYM_LETTERS[1]:
            continue
        j = i + 2
        while j < len(toks) and toks[j] in _SPELL_FILLER:
            j += 1
        words = toks[j:j + len(t)]
        if len(words) == len(t) and "".join(w[0] for w in words) == t:
            # Forms of the spelled-out words ("mapper", "mapping") add nothing either.
            said = {t} | {w[:3] for w in words}
            return all(x in STOPWORDS or x in _SPELL_FILLER or x in said or x[:3] in said for x in toks)
    return False


def _tautology(toks: list[str]) -> bool:
    return bool(_TAUTOLOGY.search(" ".join(toks))) or _spelled_out(toks)


# A new sentence carries the last subject on only when it opens by referring back to it.
_REFERS_BACK = frozenset({"it", "its", "this", "that", "they", "these", "those", "which", "also", "and", "so",
                          "but", "both", "then", "here"})
# A short sentence of alternatives is a guess: "either a partial update or the entire resource or idempotent".
GUESS_LIST_MAX_WORDS = 16


# ... and its alternatives follow each other: "or"s at most this many words apart. "Whole pages or
# API responses can be cached by a reverse proxy like Varnish or nginx" is two choices, no guess.
GUESS_CHAIN_GAP = 6


def _guess_list(lowered: str) -> bool:
    words = lowered.split()
    ors = [i for i, w in enumerate(words) if w == "or"]
    chained = any(b - a - 1 <= GUESS_CHAIN_GAP for a, b in zip(ors, ors[1:]))
    return chained and (len(words) <= GUESS_LIST_MAX_WORDS or "either" in words or "whether" in words)


@dataclass(frozen=True)
class Clause:
    """One clause of an answer sentence, with its parent sentence (the evidence shown)."""

    sentence: Sentence
    part: Sentence
    subject: str | None
    hedged: bool
    attributed: bool
    tautology: bool

    @property
    def firm(self) -> bool:
        """Said as the candidate's own claim: not hedged, not attributed, not a tautology."""
        return not (self.hedged or self.attributed or self.tautology)


@lru_cache(maxsize=4096)
def _subject_words(subjects: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((name, tuple(tuple(tokens(t)) for t in terms)) for name, terms in subjects)  # type: ignore[misc]


def _mentions(toks: tuple[str, ...], words) -> list[tuple[int, str]]:
    """(position, subject name) of each subject mention in the tokens, in order."""
    # Only where a phrase's first word stands can it start: most clauses name no subject.
    starts: dict[str, list[int]] = {}
    for i, t in enumerate(toks):
        starts.setdefault(t, []).append(i)
    found = []
    for name, phrases in words:
        for phrase in phrases:
            n = len(phrase)
            if not n:
                continue
            for i in starts.get(phrase[0], ()):
                if toks[i:i + n] == phrase:
                    found.append((i, name))
    return sorted(found)


# A phrase's words may have one word between them: "do not *really* know", "not *quite*
# sure" are the same hedge ("you do not need to know" is none).
PHRASE_GAP = 1


@lru_cache(maxsize=256)
def _phrase_pattern(phrases: tuple[str, ...]) -> re.Pattern:
    gap = rf"(?: \w+){{0,{PHRASE_GAP}}} "
    return re.compile("|".join(rf"\b{gap.join(map(re.escape, p.split()))}\b" for p in phrases))


def _has_any(text: str, phrases: tuple[str, ...]) -> bool:
    return bool(_phrase_pattern(phrases).search(" ".join(tokens(text))))


def attributed(text: str) -> bool:
    """Whether a text puts a claim in someone else's mouth ("some people think …", "it is a
    myth that …")."""
    return _has_any(normalise(text), ATTRIBUTIONS)


def _key(subjects: list[Subject]):
    return tuple((s.name, tuple(s.terms)) for s in subjects)


# A claim's rest must say something of its own: "is idempotent" of a clause about POST
# could be the contrast "unlike PUT, which is idempotent", "includes an ORM" hardly so.
LED_MIN_CONTENT = 2


@lru_cache(maxsize=16_384)
def _subject_led(term: str, words) -> tuple[str, str] | None:
    toks = tokens(term)
    for name, phrases in words:
        for phrase in phrases:
            n = len(phrase)
            rest = toks[n:]
            if n and tuple(toks[:n]) == phrase and rest and rest[0] not in ("and", "or") \
                    and sum(1 for t in rest if t not in STOPWORDS) >= LED_MIN_CONTENT:
                return name, " ".join(rest)
    return None


def subject_led(terms: list[str], subjects: list[Subject]) -> list[tuple[str, str]]:
    """(subject, the rest) of each claim term that opens with a subject's name ("fastapi batteries
    included"), in order: a clause about that subject states the rest ("FastAPI is fast, and it's
    batteries-included"). Other terms are left out."""
    if not subjects:
        return []
    return list(_subject_led_all(tuple(terms), _key(subjects)))


@lru_cache(maxsize=4096)
def _subject_led_all(terms: tuple[str, ...], key) -> tuple[tuple[str, str], ...]:
    # A misconception's terms are the same for each of its question's answers.
    words = _subject_words(key)
    return tuple(led for t in terms if (led := _subject_led(t, words)) is not None)


def subject_positions(part: Sentence, subjects: list[Subject], name: str) -> list[int]:
    """Where a clause names one subject (token positions)."""
    return [pos for pos, n in _mentions(part.all_tokens, _subject_words(_key(subjects))) if n == name]


def named_subjects(sentence: Sentence, subjects: list[Subject]) -> set[str]:
    """The subjects a sentence names anywhere in it."""
    return {name for _, name in _mentions(sentence.all_tokens, _subject_words(_key(subjects)))}


def split_clauses(sentence: Sentence, subjects: list[Subject]) -> list[str]:
    """A sentence's clauses: split at contrast words and semicolons always, and at "and", "or"
    or a comma when a new subject follows (so "PUT and PATCH are methods" stays whole)."""
    words = _subject_words(_key(subjects))
    parts = [p for p in _CONTRAST.split(sentence.text) if p and p.strip(" ,")]
    if not words:
        return parts
    out: list[str] = []
    for part in parts:
        current, start = "", 0
        joins = list(_JOIN.finditer(part))
        for k, m in enumerate(joins):
            piece = part[start:m.start()]
            current += piece
            start = m.end()
            rest = part[start:]
            following = part[start:joins[k + 1].start()] if k + 1 < len(joins) else rest
            # "PUT and PATCH are methods": a bare subject before "and" is not a clause of its own.
            if _says_more(tuple(tokens(current)), words) and (
                    _mentions(tuple(tokens(rest))[:SUBJECT_REACH], words) or _labelled(following, words)):
                out.append(current)
                current = ""
            else:
                current += m.group()
        out.append(current + part[start:])
    return [p for p in out if p.strip(" ,")]


_BRACKETED = re.compile(r"\(([^()]*)\)")


def _labelled(piece: str, words) -> bool:
    """Whether a piece (up to the next "and", "or" or comma) names a subject in brackets,
    however far in: "or checks it with the public key (RS256)" is about RS256."""
    return any(_mentions(tuple(tokens(b)), words) for b in _BRACKETED.findall(piece))


def _says_more(toks: tuple[str, ...], words) -> bool:
    """Whether the tokens hold a content word besides subject names ("lacks permission" does)."""
    named = {w for _, phrases in words for phrase in phrases for w in phrase}
    return any(t not in STOPWORDS and t not in named and t not in _CONTRASTED_BY for t in toks)


# Words that open a clause describing the thing just named.
_RELATIVE = frozenset({"which", "that", "who", "whose"})
# "The first one" / "the latter" name a comparison's subjects by their order in the question.
_BY_ORDER = {("the", "first"): 0, ("the", "former"): 0, ("the", "second"): 1, ("the", "latter"): 1}


def clause_subject(part: Sentence, subjects: list[Subject], *, by_order: bool = False) -> str | None:
    """The subject a clause is about: the first subject named in it that is not the thing
    contrasted ("unlike PATCH, PUT ..." is about PUT), or, `by_order`, named by its place in
    the question ("the first one"); None when it names none."""
    words = _subject_words(_key(subjects))
    toks = part.all_tokens
    if by_order and len(subjects) == 2:
        for i in range(len(toks) - 1):
            k = _BY_ORDER.get((toks[i], toks[i + 1]))
            if k is not None:
                words = words + ((subjects[k].name, ((toks[i], toks[i + 1]),)),)
                break
    described = None
    mentions = _mentions(toks, words)
    named = {pos for pos, _ in mentions}
    for pos, name in mentions:
        if _contrasted(toks, pos, named):
            # "..., unlike RS256, which uses a private key": the rest describes the thing contrasted.
            if described is None and _RELATIVE & set(toks[pos + 1:pos + 3]):
                described = name
            continue
        return name
    return described


def _past_articles(toks: tuple[str, ...], k: int) -> int:
    """`k` moved back over the articles just before it ("compared to *a* virtual machine")."""
    while k and toks[k - 1] in _ARTICLES:
        k -= 1
    return k


def _contrasted(toks: tuple[str, ...], pos: int, named: set[int]) -> bool:
    """Whether the subject named at `pos` is the thing contrasted or acted on, not the one the
    clause speaks of (`named`: where subjects are named, which no contrast reaches past)."""
    # "compared to a virtual machine": look past articles to the word that contrasts.
    k = _past_articles(toks, pos)
    topic = k == 1 and toks[0] in _TOPIC_BY
    if (k and toks[k - 1] in _CONTRASTED_BY and not topic) or (k > 1 and toks[k - 2:k] in _CONTRASTED_BY_TWO):
        return True
    for j in range(k - 1, max(k - 1 - CONTRAST_REACH, 0), -1):
        if j in named:
            # "Unlike PATCH, PUT ...": the contrast is PATCH's.
            break
        i = _past_articles(toks, j)
        if (i and toks[i - 1] in _CONTRASTED_FAR) or (i > 1 and toks[i - 2:i] in _CONTRASTED_BY_TWO):
            return True
    return False


# Words that introduce an example: "a shared store such as Redis" lists Redis as one of the
# things the clause speaks of.
_EXAMPLE_BY = frozenset({"like", "including", "eg"})
_EXAMPLE_BY_TWO = frozenset({("such", "as"), ("for", "example"), ("for", "instance"), ("e", "g")})


def listed_subjects(part: Sentence, subjects: list[Subject]) -> set[str]:
    """The subjects a clause names as examples of what it speaks of: "a CDN such as Cloudflare,
    a reverse proxy, a shared store such as Redis" lists the CDN and Redis alike."""
    toks = part.all_tokens
    out = set()
    for pos, name in _mentions(toks, _subject_words(_key(subjects))):
        k = _past_articles(toks, pos)
        if (k and toks[k - 1] in _EXAMPLE_BY) or (k > 1 and toks[k - 2:k] in _EXAMPLE_BY_TWO):
            out.add(name)
    return out


@lru_cache(maxsize=4096)
def _compares(question: str, key) -> bool:
    toks = tuple(t for s in analyse(question) for t in s.all_tokens)
    return len(key) == 2 and {n for _, n in _mentions(toks, _subject_words(key))} == {n for n, _ in key}


def compares(question: str, subjects: list[Subject]) -> bool:
    """Whether the question names both of two subjects ("the difference between PUT and PATCH"),
    so that "the first one" and "the latter" name them by order."""
    return _compares(question, _key(subjects))


def clauses(sentences: list[Sentence], subjects: list[Subject], question: str = "") -> list[Clause]:
    """Every clause of an answer in order; a clause naming no subject takes the previous
    clause's when it continues its sentence or refers back ("PUT replaces it. It is idempotent.").
    With the `question`, "the first one" names the first subject it compares."""
    out: list[Clause] = []
    last: str | None = None
    by_order = bool(question) and compares(question, subjects)
    for s in sentences:
        lowered = normalise(s.text)
        sentence_hedged = _has_any(lowered, HEDGES) or _guess_list(lowered)
        for n, text in enumerate(split_clauses(s, subjects)):
            # Most sentences are one clause, already analysed with the answer.
            part = [s] if text == s.text else analyse(text)
            if not part:
                continue
            p = part[0] if len(part) == 1 else _merge(part)
            subject = clause_subject(p, subjects, by_order=by_order) if subjects else None
            if subject is None and (n > 0 or (p.all_tokens and p.all_tokens[0] in _REFERS_BACK)):
                subject = last
            last = subject
            out.append(Clause(
                sentence=s, part=p, subject=subject,
                hedged=sentence_hedged,
                attributed=attributed(text),
                tautology=_tautology(tokens(text)),
            ))
    return out


def _merge(parts: list[Sentence]) -> Sentence:
    # A clause that the sentence splitter would cut again (a stray "!" inside) is read whole.
    return analyse(re.sub(r"[.!?;]", ",", " ".join(p.text for p in parts)))[0]


_SEGMENT = re.compile(r",\s+(?:and\s+|but\s+|so\s+)?|\s*;\s*|\s+(?:but|while|whereas|whilst)\s+", re.IGNORECASE)
# A segment has at least this many content words, else it stays with its neighbour.
SEGMENT_MIN_WORDS = 3


def segments(sentence: Sentence) -> list[str]:
    """The parts of a long sentence that each say one thing ("404 is a server crash, 500 means
    the URL does not exist"), for matching claims by meaning; [] when it says one thing."""
    return list(_segments(sentence.text))


def _content_words(text: str) -> int:
    return sum(1 for t in tokens(text) if t not in STOPWORDS)


def _split_outside_brackets(text: str) -> list[str]:
    """_SEGMENT's pieces, never cut inside brackets: "(HMAC, e.g. HS256)" is one aside."""
    depth, inside = 0, []
    for ch in text:
        depth += ch == "("
        inside.append(depth > 0)
        depth -= ch == ")" and depth > 0
    out, start = [], 0
    for m in _SEGMENT.finditer(text):
        if not inside[m.start()]:
            out.append(text[start:m.start()])
            start = m.end()
    return out + [text[start:]]


@lru_cache(maxsize=65_536)
def _segments(text: str) -> tuple[str, ...]:
    pieces = [p for p in _split_outside_brackets(text) if p and p.strip()]
    out: list[str] = []
    for piece in pieces:
        if out and min(_content_words(piece), _content_words(out[-1])) < SEGMENT_MIN_WORDS:
            out[-1] = f"{out[-1]}, {piece}"
        else:
            out.append(piece)
    return tuple(out) if len(out) > 1 else ()
