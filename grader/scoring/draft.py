"""A rubric drafted from a model answer: key phrases as concepts, with weights and synonyms.

No language model and no tagger: candidate concepts are the runs of content words between
stopwords and punctuation of the reference answer (a cheap noun-phrase chunker), the
question's own words excluded (restating the question shows nothing).  Phrases are ranked
by how specific they are (words, length, repeats in the reference) and the best few become
concepts.  Synonyms come from the reference itself: an acronym and its expansion
("artificial neural network (ANN)"), a joined spelling ("data point" / "datapoint"), a
three-word phrase's words in pairs.  Matching is already inflection-, case- and
typo-tolerant (grader.scoring.keywords).  With `--llm` the configured LLM proposes the
rubric instead (grader.llm.drafting), and this draft is the fallback when it fails.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

from grader.models import Concept, Rubric
from grader.text import NEGATIONS, STOPWORDS, clean, split_sentences, stem, tokens

# Words that carry no concept of their own in a model answer, beyond the stopwords.
GENERIC = frozenset(
    """also e g eg i e ie etc example examples use used uses using usually often always
    one two three first second third way ways thing things kind kinds type types case cases
    called known means mean therefore thus hence however since whereas like well much many
    new make makes made get gets give gives given need needs needed able another every
    following follows answer question explain describe state name mention give reason reasons
    through throughout whether between within among across via per yet still even rather
    either neither us tell tells told let lets say says said see seen shown show shows
    able unable possible possibly certain certainly really actually simply basically
    instead otherwise already always never sometimes something anything everything nothing
    someone anyone everyone good better best bad worse worst big small large lot lots""".split()
)
_BREAK = re.compile(r"[,;:()\[\]{}\"“”!?]|\.(?:\s|$)| - | – | — ")
_PAREN = re.compile(r"([A-Za-z][\w\- ]{2,60}?)\s*\(([^()]{1,40})\)")

MIN_CONCEPTS = 2
MAX_CONCEPTS = 8
MAX_PHRASE_WORDS = 3


@dataclass
class _Phrase:
    words: tuple[str, ...]  # raw lowercase tokens
    stems: tuple[str, ...]
    sentence: str
    count: int = 1
    synonyms: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(self.words)


def question_stems(question: str) -> frozenset[str]:
    """Stems of the question's content words (never evidence of an answer's content)."""
    return frozenset(stem(t) for t in tokens(question) if t not in STOPWORDS)


def _usable(tok: str, qstems: frozenset[str]) -> bool:
    if tok in STOPWORDS or tok in NEGATIONS or tok in GENERIC:
        return False
    if len(tok) < 2 and not tok.isdigit():
        return False
    return stem(tok) not in qstems


def candidate_phrases(reference: str, question: str = "") -> list[_Phrase]:
    """Runs of content words of the reference (question words excluded), merged by stems."""
    qstems = question_stems(question)
    found: dict[tuple[str, ...], _Phrase] = {}
    for sent in split_sentences(reference):
        for chunk in _BREAK.split(sent):
            run: list[str] = []
            for tok in [*tokens(chunk), ""]:
                if tok and _usable(tok, qstems):
                    run.append(tok)
                    continue
                if run:
                    pieces = (
                        [tuple(run)] if len(run) <= MAX_PHRASE_WORDS
                        else [tuple(run[i : i + 2]) for i in range(len(run) - 1)]
                    )
                    for words in pieces:
                        key = tuple(stem(w) for w in words)
                        if key in found:
                            found[key].count += 1
                        else:
                            found[key] = _Phrase(words, key, clean(sent))
                    run = []
    _add_synonyms(reference, found)
    return list(found.values())


def _acronym(words: tuple[str, ...]) -> str:
    return "".join(w[0] for w in words)


def _add_synonyms(reference: str, found: dict[tuple[str, ...], _Phrase]) -> None:
    # "artificial neural network (ANN)": the acronym names the same concept.
    for m in _PAREN.finditer(reference):
        outer, inner = tokens(m.group(1)), tokens(m.group(2))
        if not outer or not inner:
            continue
        for ph in found.values():
            n = len(ph.words)
            if tuple(outer[-n:]) == ph.words and " ".join(inner) != ph.text:
                ph.synonyms.append(" ".join(inner))
    for ph in found.values():
        if len(ph.words) >= 2:
            acr = _acronym(ph.words)
            if len(acr) >= 2 and re.search(rf"\b{acr}\b", reference.lower()):
                ph.synonyms.append(acr)
        if len(ph.words) == 2:
            ph.synonyms.append("".join(ph.words))


def _score(ph: _Phrase, stem_counts: dict[str, int]) -> float:
    # Specific: several words, long words, words the reference repeats.
    spec = sum(math.log(1 + len(w)) for w in ph.words)
    rep = sum(stem_counts.get(s, 1) for s in ph.stems) / len(ph.stems)
    return spec * (1 + 0.5 * math.log(rep)) * (1 + 0.25 * (ph.count - 1))


@dataclass(frozen=True)
class DraftConcept:
    """A drafted concept before it becomes a rubric `Concept`."""

    name: str
    terms: tuple[str, ...]
    weight: float
    sentence: str


def draft_concepts(reference: str, question: str = "") -> list[DraftConcept]:
    """The key concepts of a model answer, most important first."""
    phrases = candidate_phrases(reference, question)
    if not phrases:
        return []
    qstems = question_stems(question)
    stem_counts: dict[str, int] = {}
    for ph in phrases:
        for s in ph.stems:
            stem_counts[s] = stem_counts.get(s, 0) + ph.count
    n_stems = len(stem_counts)
    k = max(MIN_CONCEPTS, min(MAX_CONCEPTS, math.ceil(n_stems / 3)))
    ranked = sorted(phrases, key=lambda p: (-_score(p, stem_counts), p.text))
    chosen: list[_Phrase] = []
    covered: set[str] = set()
    for ph in ranked:
        # A phrase whose every word is already in a chosen concept adds nothing.
        if set(ph.stems) <= covered:
            continue
        chosen.append(ph)
        covered.update(ph.stems)
        if len(chosen) >= k:
            break
    scores = [_score(p, stem_counts) for p in chosen]
    top = max(scores)
    out = []
    for ph, sc in zip(chosen, scores):
        terms = [ph.text]
        if len(ph.words) == 3:
            terms += [" ".join(ph.words[i : i + 2]) for i in range(2)]
        terms += ph.synonyms
        # A term made only of the question's words would credit restating the question.
        terms = list(dict.fromkeys(
            t for t in terms
            if t.strip() and not all(stem(w) in qstems for w in tokens(t) if w not in STOPWORDS)
        )) or [ph.text]
        weight = float(1 + round(2 * sc / top)) if top > 0 else 1.0
        out.append(DraftConcept(ph.text, tuple(terms), weight, ph.sentence))
    return out


def slug(text: str) -> str:
    """A question id usable as a rubric's question_id."""
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80].strip("-")
    return s or "drafted"


def draft_rubric(question_id: str, reference: str, question: str = "", points: float = 10.0) -> Rubric:
    """A valid rubric (grader.models.Rubric) drafted from a model answer."""
    concepts = draft_concepts(reference, question)
    if not concepts:
        words = [t for t in tokens(reference) if t not in STOPWORDS] or tokens(reference) or ["answer"]
        concepts = [DraftConcept(words[0], (words[0],), 1.0, clean(reference) or words[0])]
    rubric_concepts = []
    seen: set[str] = set()
    for c in concepts:
        name = c.name[:120]
        if name.lower() in seen:
            continue
        seen.add(name.lower())
        desc = c.sentence if len(c.sentence) <= 400 else c.sentence[:397] + "..."
        rubric_concepts.append(Concept(
            name=name, description=desc or name, weight=c.weight, terms=list(c.terms),
            hint=f"Mention {c.name}.",
        ))
    return Rubric(question_id=slug(question_id), points=points, concepts=rubric_concepts)


def rubric_toml(rubric: Rubric, question: str = "") -> str:
    """The rubric as TOML in the layout of rubrics/*.toml (tomllib reads it back)."""

    def s(v: str) -> str:
        # A JSON string is a TOML basic string, except that TOML also forbids a raw DEL.
        return json.dumps(" ".join(v.split()), ensure_ascii=False).replace("\x7f", "\\u007f")

    lines = []
    if question:
        lines.append(f"# Drafted rubric for {clean(question)[:200]!s}")
    lines += [
        "# Drafted from the model answer by `grader rubric draft`: review the concepts, their",
        "# weights and terms (add synonyms), mark required ones, add misconceptions.",
        f"question_id = {s(rubric.question_id)}",
        f"points = {rubric.points:g}",
    ]
    for c in rubric.concepts:
        lines += [
            "",
            "[[concepts]]",
            f"name = {s(c.name)}",
            f"description = {s(c.description)}",
            f"weight = {c.weight:g}",
            f"required = {'true' if c.required else 'false'}",
            "terms = [" + ", ".join(s(t) for t in c.terms) + "]",
            f"hint = {s(c.hint)}",
        ]
    for m in rubric.misconceptions:
        lines += [
            "",
            "[[misconceptions]]",
            f"name = {s(m.name)}",
            "terms = [" + ", ".join(s(t) for t in m.terms) + "]",
            f"why = {s(m.why)}",
            f"penalty = {m.penalty:g}",
        ]
    return "\n".join(lines) + "\n"
