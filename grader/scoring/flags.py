"""Warning signs in an answer that a human reviewer should see."""

from __future__ import annotations

import re
from functools import lru_cache

from grader.text import STOPWORDS, normalise, normalised_tokens, tokens

INJECTION = "possible prompt injection"
KEYWORD_LIST = "keyword list"
TOO_SHORT = "very short answer"
TRUNCATED = "answer truncated"
NO_ANSWER = "no answer"
REQUIRED_MISSING = "missing required concept"
HEDGED = "hedged: guesses earn no credit"
TAUTOLOGY = "tautology: restating the question earns no credit"
NOT_ENGLISH = "not in English: the rubric and model read English, so a person should read it"

# An answer is read as another language only when it is long enough to tell, the identifier
# is sure, and that language's function words make up a real share of it: short answers full
# of identifiers ("select_related JOIN, prefetch_related separate query") come out as Spanish
# at even odds, and lists of English terms ("1. Gaussian function 2. Multi Quadrics") as French.
LANGUAGE_MIN_WORDS = 8
LANGUAGE_MIN_PROBABILITY = 0.9
LANGUAGE_MIN_FUNCTION_SHARE = 0.15
# English function words make up 40-50% of English prose and at most 18% of the foreign
# answers in the development sets: above this share the identifier is not asked (it costs
# about as much per answer as a tenth of its embedding).
ENGLISH_PROSE_SHARE = 0.25

# Phrases that address the grader rather than answer the question.  Matched on normalised
# text, so case, zero-width characters and full-width letters do not hide them.
_INJECTION_PATTERNS = [
    r"\b(ignore|disregard|forget|override|bypass)\b.{0,40}\b(instruction|prompt|rubric|rule|guideline|above|previous|prior|system)",
    r"\b(you are|you re|act as|pretend to be|roleplay|role play)\b.{0,40}\b(grader|assistant|ai|model|examiner|teacher|evaluator|dan)\b",
    r"(^|\n|\s)(system|assistant|user|developer)\s*[:>\]]",
    r"<\|?(im_start|im_end|system|assistant|endoftext)\|?>",
    r"\[/?(inst|sys)\]",
    r"\b(award|give|assign|grant|rate|score|mark)\b.{0,30}\b(full|maximum|max|perfect|10|100|ten|top)\b.{0,20}\b(mark|point|score|grade|credit|out of|/\s*10|percent)",
    r"\b(score|grade|rating|verdict)\b\s*[\"']?\s*[:=]\s*[\"']?\s*(10|100|9|a\+?|pass|strong)\b",
    r"[\"'](score|suggested_score|verdict|concepts|grade)[\"']\s*:",
    r"\bnew (instruction|task|rule)s?\b",
    r"\b(this|the) (answer|response) (is|should be) (graded|scored|marked|rated) (as )?(correct|perfect|full|10)",
    r"<!--|<script|<\s*(div|span|p)[^>]*(display\s*:\s*none|hidden)",
    r"\bas an? (ai|language model|llm)\b",
    # Encoded payloads: asking to decode something, or a long unbroken base64-like blob
    # (plain mentions of base64, as in JWT answers, are not flagged).
    r"\b(decode|decrypt|deobfuscate)\b.{0,40}\b(base64|rot13|rot 13|hex|this|following)\b",
    # Added with the LLM reviewer (grader/llm): other languages, fake end-of-answer tags,
    # and verdicts addressed to the grader.
    r"\bignor(e[rz]?|a\w*|ier\w*)\b.{0,40}\b(instruc\w*|istruzion\w*|anweisung\w*|consigne\w*|regla\w*|regole|regras|règle\w*|regeln)",
    r"игнорир\w*.{0,40}(инструкц|правил|указан)",
    r"(忽略|无视|忽视).{0,20}(指令|指示|说明|规则|要求)",
    r"(指示|命令|ルール).{0,20}(無視|むし)",
    r"\b(grader|grading|examiner|evaluator|marker)('s)? (instruction|note|override|directive)s?\b",
    r"\b(mark|set|treat|consider|count)\b.{0,20}\b(all|every|each)\b.{0,15}\bconcepts?\b.{0,20}\b(covered|present|met|satisfied)",
    r"\ball (the )?(rubric )?concepts (are )?(covered|present|met|satisfied)",
    r"</\s*(answer|candidate[_ ]?answer|data|response)\s*>",
]
# One pattern at a time: a single alternation of all of them tried every branch at every
# position and took a third longer on ordinary answers.
_INJECTION_RES = [re.compile(p, re.S) for p in _INJECTION_PATTERNS]
# A long unbroken base64-like blob that is not a hex digest.  Checked run by run rather than
# with a lookahead at every position, which took seconds on 20,000 letters in a row.
_BLOB = re.compile(r"[a-z0-9+/]{40,}")
_HEX = re.compile(r"[0-9a-f]+")


def looks_injected(answer: str, *, normalised: str | None = None) -> bool:
    """Whether the answer seems to talk to the grader instead of answering."""
    text = normalise(answer) if normalised is None else normalised
    if any(r.search(text) for r in _INJECTION_RES):
        return True
    return any(not _HEX.fullmatch(m.group()) for m in _BLOB.finditer(text))


def looks_like_keyword_list(answer: str, *, toks: list[str] | None = None) -> bool:
    """A run of terms without sentences: few function words among many tokens."""
    toks = tokens(answer) if toks is None else toks
    if len(toks) < 8:
        return False
    function_words = sum(1 for t in toks if t in STOPWORDS)
    return function_words / len(toks) < 0.12


@lru_cache(maxsize=1)
def _identifier():
    import py3langid

    return py3langid.langid.LanguageIdentifier.from_pickled_model(py3langid.langid.MODEL_FILE, norm_probs=True)


def language(answer: str) -> tuple[str, float]:
    """The answer's language (ISO 639-1) and how sure py3langid is of it (0..1)."""
    lang, p = _identifier().classify(answer)
    return lang, float(p)


@lru_cache(maxsize=64)
def _function_words(lang: str) -> frozenset[str]:
    from stop_words import StopWordError, get_stop_words

    try:
        return frozenset(get_stop_words(lang))
    except StopWordError:  # a language without a list: too rare here to call
        return frozenset()


def looks_foreign(answer: str, *, toks: list[str] | None = None) -> bool:
    """Whether a long enough answer is surely prose in a language other than English."""
    toks = tokens(answer) if toks is None else toks
    if len(toks) < LANGUAGE_MIN_WORDS:
        return False
    english = sum(t in STOPWORDS for t in toks) / len(toks)
    if english >= ENGLISH_PROSE_SHARE:  # most answers: no need to ask the identifier
        return False
    lang, p = language(answer)
    if lang == "en" or p < LANGUAGE_MIN_PROBABILITY:
        return False
    theirs = _function_words(lang)
    share = sum(t in theirs for t in toks) / len(toks)
    return share >= LANGUAGE_MIN_FUNCTION_SHARE and share > english


def answer_flags(answer: str) -> list[str]:
    """Flags that depend on the answer's text alone."""
    text = normalise(answer)
    toks = normalised_tokens(text)
    flags = []
    if looks_injected(answer, normalised=text):
        flags.append(INJECTION)
    if looks_foreign(text, toks=toks):
        # Its words are not English function words, but it is no run of terms either.
        flags.append(NOT_ENGLISH)
    elif looks_like_keyword_list(answer, toks=toks):
        flags.append(KEYWORD_LIST)
    if 0 < len(toks) < 5:
        flags.append(TOO_SHORT)
    return flags
