"""An answer as every scorer reads it: cut to length, split into sentences, flagged, once."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from grader.models import MAX_ANSWER_CHARS, Question, Rubric
from grader.scoring import flags as F
from grader.text import Sentence, analyse, clean

# Sentences beyond this many are not embedded one by one.
MAX_SENTENCES = 64


@dataclass(frozen=True)
class Item:
    """One answer to grade: the question, its rubric (None: reference answer only), the text."""

    question: Question
    rubric: Rubric | None
    answer: str


@dataclass
class Prepared:
    """An answer as grading reads it: cut to length, split into sentences, flagged."""

    item: Item
    text: str
    sentences: list[Sentence]
    flags: list[str]

    @property
    def empty(self) -> bool:
        """No words to grade."""
        return not self.sentences

    @property
    def whole(self) -> str:
        """The whole answer as it is embedded."""
        return clean(self.text)


def _read(answer: str) -> tuple[str, list[Sentence], list[str]]:
    text = answer or ""
    flags: list[str] = []
    if len(text) > MAX_ANSWER_CHARS:
        text = text[:MAX_ANSWER_CHARS]
        flags.append(F.TRUNCATED)
    sentences = analyse(text) if clean(text) else []
    if sentences:
        flags = F.answer_flags(text) + flags
    return text, sentences, flags


def prepare(items: Iterable[Item]) -> list[Prepared]:
    """Every item read once, for all scorers to share; an answer given word for word more than
    once (to any question) is read once."""
    read: dict[str, tuple[str, list[Sentence], list[str]]] = {}
    out = []
    for it in items:
        answer = it.answer or ""
        if answer not in read:
            read[answer] = _read(answer)
        text, sentences, flags = read[answer]
        out.append(Prepared(it, text, sentences, list(flags)))
    return out
