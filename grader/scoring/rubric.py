"""The rubric scorer: which of a question's concepts an answer claims, and which
misconceptions it states, each with the sentence that shows it.

A concept's terms count only in a firm clause (not hedged, not attributed to others, not a
tautology) about the concept's subject and not denied; the same claim made of the other
subject of a comparison is a swapped-roles misconception, and a denied one a misconception
too.  Misconceptions are found by their terms and, sentence by sentence, by meaning.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache

import numpy as np

from grader.models import Concept, ConceptResult, Misconception, MisconceptionResult, Rubric, Signal, Subject
from grader.scoring import flags as F
from grader.scoring import similarity as S
from grader.scoring.claims import (Clause, attributed, clause_subject, clauses, listed_subjects, named_subjects,
                                   segments, subject_led, subject_positions)
from grader.scoring.evidence import Evidence
from grader.scoring.exemplars import lent_statements, well_graded_sentences
from grader.scoring.keywords import Hit, Vocabulary, find_in_sentence, find_terms
from grader.scoring.prepare import MAX_SENTENCES, Prepared
from grader.text import NEGATIONS, STOPWORDS, analyse, normalise, normalised_tokens, tokens

NAME = "rubric"
CLAIMED = "claimed"

# Meaning alone credits one concept per clause of a sentence, or per WORDS_PER_MEANING
# content words when that is more: "Sessions live on the server, JWT is a signed token"
# cannot evidence revocation, scaling and use cases at once.
WORDS_PER_MEANING = 12
# A sentence states a misconception by meaning when it is at least MISCONCEPTION_SIM close
# to one of its statements and MISCONCEPTION_MARGIN closer to it than to any correct
# statement (the concepts' descriptions and the model answer's sentences).
MISCONCEPTION_SIM = 0.75
MISCONCEPTION_MARGIN = 0.10
# Sentences (or parts) shorter than this say too little for their meaning to convict them
# ("PUT is idempotent." sits close to "Only GET is idempotent, since PUT changes state", and
# "you end up with N+1 queries" to "N+1 queries are harmless because each query is fast").
MISCONCEPTION_MIN_WORDS = 6
# Words that deny the claim that follows them, at most DENIAL_LOOKBACK tokens before it.
# Narrower than keywords.NEGATIONS: "without an index the database scans every row" still
# shows the full-scan concept.
DENIALS = frozenset({"not", "never", "cannot", "neither", "nor", "no", "non"})
DENIAL_LOOKBACK = 3
# Words after a thing that say it has no part to play: "a TTL is not needed", "the order does
# not matter", "lazy loading has nothing to do with it". Not "useless", "harmless" or "not used":
# "salts make rainbow tables useless", "reads are harmless" and "the index is not used" are
# right answers. A new clause ("so", "because") ends the reach.
_DISMISSAL = re.compile(r"^(?:(?!(?:so|because|since|if|when|unless|but|then|while)\b)\S+ ){0,5}?"
                        r"(?:(?:not|never) (?:\S+ )?(?:needed|necessary|required)|unnecessary"
                        r"|(?:nobody|no one) (?:uses|needs)|(?:do|does|did) not (?:\S+ )?(?:matter|apply)"
                        r"|(?:has|have|had) nothing to do with|negligible|unaffected|not affected|no effect"
                        r"|never a problem)\b")
DISMISSAL_REACH = 9
# Questions whose own texts the scorer keeps at once (a few hundred bytes each).
OWN_TEXTS_KEPT = 4096
# The meaning-credit ramp of the rubric scorer (see `meaning_credit`).
MEANING_FLOOR = S.CONCEPT_FLOOR
MEANING_CEIL = S.CONCEPT_CEIL


def meaning_credit(similarity: float) -> float:
    """Partial credit for a concept shown only by meaning: from nothing at MEANING_FLOOR to
    SEMANTIC_CONCEPT_MAX at MEANING_CEIL (against the description or a plain-words statement)."""
    return round(S.SEMANTIC_CONCEPT_MAX * S.ramp(round(float(similarity), 4), MEANING_FLOOR, MEANING_CEIL), 4)


def concept_credit(term_hit: bool, best_similarity: float) -> float:
    """A concept's credit: 1 when its terms are in the answer, else partial credit from the
    closest sentence's meaning (grader.scoring.similarity.concept_credit)."""
    return 1.0 if term_hit else S.concept_credit(round(float(best_similarity), 4))


def keyword_share(concepts: Sequence[ConceptResult]) -> float:
    """Weighted share of the rubric's concepts the answer showed."""
    total = sum(c.weight for c in concepts)
    if total <= 0:
        return 0.0
    return sum(c.weight * c.credit for c in concepts) / total


def denied(hit: Hit) -> bool:
    """Whether a denial word stands just before the hit or inside it ("is not idempotent"), or
    a dismissal follows it ("a TTL is not needed"); a denial before a comma governs its own item
    of a list, not the next ("403 no permission, 404 not found")."""
    toks = hit.sentence.all_tokens
    own = sum(1 for t in toks[hit.start:hit.end + 1] if t in DENIALS)
    lo = max(0, hit.start - DENIAL_LOOKBACK)
    if sum(1 for t in toks[lo:hit.end + 1] if t in DENIALS) > own:
        lo = max(lo, _item_start(hit.sentence.text, len(toks), hit.start))
        if sum(1 for t in toks[lo:hit.end + 1] if t in DENIALS) > own:
            return True
    return bool(_DISMISSAL.search(" ".join(toks[hit.end + 1:hit.end + 1 + DISMISSAL_REACH])))


_LIST_SEPARATOR = re.compile(r"[,;:]")


@lru_cache(maxsize=4096)
def _item_starts(text: str) -> tuple[int, ...]:
    starts, n = [], 0
    for piece in _LIST_SEPARATOR.split(normalise(text)):
        starts.append(n)
        n += len(normalised_tokens(piece))
    return tuple(starts) if n else ()


def _item_start(text: str, n_tokens: int, pos: int) -> int:
    """The token index where the comma-separated item holding token `pos` starts (0 when the
    text's tokens do not line up with the sentence's)."""
    starts = _item_starts(text)
    if not starts or len(tokens(text)) != n_tokens:
        return 0
    return max(s for s in starts if s <= pos)


def concept_denied(hit: Hit, concept: Concept) -> bool:
    """Whether the hit denies the concept: denied, unless the concept itself says that term
    under a denial ("passwords are never kept in plaintext", "it is not hardened")."""
    return denied(hit) and hit.term not in _said_denied(concept.description, tuple(concept.statements),
                                                         tuple(concept.terms))


@lru_cache(maxsize=4096)
def _said_denied(description: str, statements: tuple[str, ...], terms: tuple[str, ...]) -> frozenset[str]:
    sentences = [s for text in (description, *statements) for s in analyse(text)]
    return frozenset(t for t in terms for s in sentences if (h := find_in_sentence(t, s)) is not None and denied(h))


# For a sentence's polarity as a whole, any negating word counts ("it is false that ...").
_POLARITY = DENIALS | NEGATIONS


def _denial_count(words: Sequence[str]) -> int:
    return sum(1 for t in words if t in _POLARITY)


def correct_statements(rubric: Rubric, model_answer: str) -> list[str]:
    """What a right answer says: every concept's description and plain-words statements, the
    model answer's sentences and the parts of its long sentences (an answer's parts are held
    against like parts)."""
    return list(_model_answer_parts(model_answer)) + [t for c in rubric.concepts for t in (c.description, *c.statements)]


@lru_cache(maxsize=1024)
def _model_answer_parts(model_answer: str) -> tuple[str, ...]:
    sentences = analyse(model_answer)
    return tuple([s.text for s in sentences] + [t for s in sentences for t in segments(s)])


class _SentenceFacts:
    """What an answer's clauses say of each sentence (by its text): the subjects it speaks of,
    how many clauses it has, and whether any of them is a firm claim."""

    def __init__(self, parts: list[Clause]) -> None:
        self.subjects_of: dict[str, set[str | None]] = {}
        self.clauses: dict[str, int] = {}
        self.firm: set[str] = set()
        for c in parts:
            self.subjects_of.setdefault(c.sentence.text, set()).add(c.subject)
            self.clauses[c.sentence.text] = self.clauses.get(c.sentence.text, 0) + 1
            if c.firm:
                self.firm.add(c.sentence.text)


class _Claim:
    """What the firm clauses say about one concept: shown, swapped, denied or only guessed."""

    def __init__(self) -> None:
        self.shown: Clause | None = None
        self.swapped: Clause | None = None
        self.denied: Clause | None = None
        self.hedged = False


@lru_cache(maxsize=1024)
def _statements_of(misconceptions: tuple[tuple[str, ...], ...]) -> tuple[tuple[str, ...], list[int]]:
    rows: list[str] = []
    starts = []
    for said in misconceptions:
        if said:
            starts.append(len(rows))
            rows.extend(said)
    return tuple(rows), starts


def _statement_rows(rubric: Rubric) -> tuple[tuple[str, ...], list[int]]:
    """All the misconceptions' statements in order, and where each one's first stands (those
    with statements only)."""
    return _statements_of(tuple(tuple(m.statements) for m in rubric.misconceptions))


# How near a subject's name a denial must stand to deny what is said of it ("FastAPI is not",
# "never a 500").
SUBJECT_DENIAL_REACH = 2


def _denied_at(toks: tuple[str, ...], pos: int) -> bool:
    """Whether a denial stands right beside the subject named at `pos` (articles skipped)."""
    before = [t for t in toks[max(0, pos - SUBJECT_DENIAL_REACH - 1):pos] if t not in ("a", "an", "the")]
    return bool(_POLARITY & set(before[-SUBJECT_DENIAL_REACH:]) or _POLARITY & set(toks[pos + 1:pos + 1 + SUBJECT_DENIAL_REACH]))


@lru_cache(maxsize=4096)
def _directed(term: str) -> bool:
    """A term "A to B" names a direction, and read backwards it is another thing: "one record
    has many" is no "many to one"."""
    toks = tokens(term)
    return len(toks) == 3 and toks[1] == "to"


def _claim(concept: Concept, parts: list[Clause], vocab: Vocabulary, wrong: set[str], stating: set[int],
           subjects: list[Subject], *, listing: bool = False) -> _Claim:
    """What the clauses claim of the concept. A clause of a `wrong` sentence (one stating a
    misconception) shows it not, but may swap or deny it, unless it is one of the clauses
    `stating` the misconception (by `id` of its part): a wrong claim is counted once.  In a
    `listing` (a keyword list) a concept about a subject is shown only beside that subject's name."""
    out = _Claim()
    terms = [t for t in concept.terms if vocab.may_show(t)]
    if not terms:
        return out
    for clause in parts:
        if id(clause.part) in stating:
            continue
        hits = [h for h in (find_in_sentence(t, clause.part, ordered=_directed(t)) for t in terms) if h]
        if not hits:
            continue
        # One affirmed term is enough: "runs identically, so no more works-on-my-machine issues".
        hit = next((h for h in hits if not concept_denied(h, concept)), hits[0])
        if clause.hedged:
            out.hedged = True
        if not clause.firm:
            continue
        no = concept_denied(hit, concept)
        # A clause that lists this concept's subject among others ("a CDN such as Cloudflare, a
        # shared store such as Redis") may say the claim of it.
        other = (concept.subject is not None and clause.subject is not None and clause.subject != concept.subject
                 and concept.subject not in listed_subjects(clause.part, subjects))
        if other:
            # "PATCH is not idempotent" beside "PUT is idempotent" is a contrast, not a swap; and
            # "it is not true that the template holds the logic" is no swap either.
            negated = any(t in _POLARITY for t in clause.part.all_tokens[:hit.end + 1])
            if not negated and out.swapped is None:
                out.swapped = clause
            continue
        if listing and concept.subject is not None and clause.subject is None:
            # "partial update, idempotent, entire resource" says of neither PUT nor PATCH which it is.
            continue
        if no:
            if concept.subject is not None and clause.subject == concept.subject and out.denied is None:
                out.denied = clause
            continue
        if clause.sentence.text in wrong:
            continue
        out.shown = clause
        break
    return out


class RubricScorer:
    """Concepts by their terms in firm clauses about their subject or, partially, by meaning
    (against their statements and the well-graded exemplars' sentences closest to them);
    misconceptions by their terms, by meaning, and from swapped or denied concept claims (a
    sentence stating a misconception is evidence for no concept)."""

    name = NAME

    def __init__(self) -> None:
        # A question's own texts, the same for each of its answers: (rubric, model answer, texts)
        # by the rubric's id, checked by identity.
        self._own: dict[int, tuple[Rubric, str, tuple[str, ...]]] = {}

    def texts(self, p: Prepared) -> list[str]:
        """Sentences and the parts of long ones, concept descriptions, misconception statements and the
        model answer's sentences."""
        if p.empty or p.item.rubric is None:
            return []
        rubric = p.item.rubric
        sents = p.sentences[:MAX_SENTENCES]
        return ([s.text for s in sents] + [t for s in sents for t in segments(s)]
                + list(self._question_texts(rubric, p.item.question.model_answer)))

    def _question_texts(self, rubric: Rubric, model_answer: str) -> tuple[str, ...]:
        known = self._own.get(id(rubric))
        if known is None or known[0] is not rubric or known[1] != model_answer:
            texts = (correct_statements(rubric, model_answer) + [t for m in rubric.misconceptions for t in m.statements]
                     + well_graded_sentences(rubric))
            if len(self._own) >= OWN_TEXTS_KEPT:
                self._own.clear()
            known = self._own[id(rubric)] = (rubric, model_answer, tuple(dict.fromkeys(texts)))
        return known[2]

    def score(self, answers: Sequence[Prepared], vectors: Mapping[str, np.ndarray]) -> list[Evidence]:
        """One Evidence per answer: the `keywords` signal, concept and misconception results."""
        stacked = S.Stacked(vectors)
        # Each question's exemplar sentences lent to its concepts, found once per call.
        lent: dict[int, list[tuple[str, ...]]] = {}
        out = []
        for p in answers:
            rubric = p.item.rubric
            if rubric is None or p.empty:
                out.append(Evidence())
                continue
            if id(rubric) not in lent:
                lent[id(rubric)] = lent_statements(rubric, stacked)
            out.append(self._one(p, lent[id(rubric)], vectors, stacked))
        return out

    def _one(self, p: Prepared, lent: list[tuple[str, ...]], vec: Mapping[str, np.ndarray],
             stacked: S.Stacked) -> Evidence:
        rubric = p.item.rubric
        sents = p.sentences[:MAX_SENTENCES]
        # Sentences, then the parts of long ones, each with the index of the sentence it stands in:
        # misconceptions and concepts are both held against all of them.
        units = [(s.text, s) for s in sents] + [(t, s) for s in sents for t in segments(s)]
        owner = list(range(len(sents))) + [j for j, s in enumerate(sents) for _ in segments(s)]
        uvecs = np.stack([vec[t] for t, _ in units])
        parts = clauses(p.sentences, rubric.subjects, p.item.question.question)
        vocab = Vocabulary(p.sentences)
        facts = _SentenceFacts(parts)
        misconceptions, stating = self._stated(p, rubric, parts, facts, units, uvecs, vocab, stacked)
        # A sentence stating a misconception is evidence for no concept: first those the
        # misconceptions' terms and meaning find, then those a swapped or denied claim states.
        stated = {m.evidence for m in misconceptions}
        listing = F.KEYWORD_LIST in p.flags
        claims = [_claim(c, parts, vocab, stated, stating, rubric.subjects, listing=listing) for c in rubric.concepts]
        auto = _claimed_wrong(rubric.concepts, claims)
        wrong = stated | {m.evidence for m in auto}
        if wrong != stated:
            # "select_related does an outer join, but only for reverse foreign keys" shows no JOIN.
            claims = [_claim(c, parts, vocab, wrong, stating, rubric.subjects, listing=listing) if cl.shown is not None and cl.shown.sentence.text in wrong else cl
                      for c, cl in zip(rubric.concepts, claims)]
            named = {m.name for m in auto}
            auto += [m for m in _claimed_wrong(rubric.concepts, claims) if m.name not in named]
            wrong |= {m.evidence for m in auto}
        misconceptions += auto
        concepts = self._concepts(rubric, lent, claims, facts, sents, units, uvecs, owner, stacked, wrong, listing)
        shown = [c.name for c in concepts if c.matched]
        flags = []
        if any(cl.hedged and cl.shown is None for cl in claims):
            flags.append(F.HEDGED)
        if any(c.tautology for c in parts) and not shown:
            flags.append(F.TAUTOLOGY)
        keywords = Signal(name="keywords", value=round(keyword_share(concepts), 4), scorer=NAME,
                          explanation=f"{len(shown)} of {len(concepts)} concepts shown"
                          + (f": {', '.join(shown)}" if shown else ""))
        return Evidence(signals=[keywords, claimed_share(parts, wrong)], concepts=concepts,
                        misconceptions=misconceptions, flags=flags)

    def _stated(self, p: Prepared, rubric: Rubric, parts: list[Clause], facts: _SentenceFacts, units, uvecs: np.ndarray,
                vocab: Vocabulary, stacked: S.Stacked) -> tuple[list[MisconceptionResult], set[int]]:
        """Misconceptions stated by their terms in a firm clause, or by a sentence's meaning (about
        the same subject, with the same polarity); and the clauses that state them (by `id` of
        their part: every clause of a sentence convicted by meaning)."""
        out: list[MisconceptionResult] = []
        stating: set[int] = set()
        firm_parts = [c for c in parts if c.firm]
        correct = correct_statements(rubric, p.item.question.model_answer)
        right = np.max(stacked(correct) @ uvecs.T, axis=0)
        # Every misconception's statements against every unit in one product, and each one's
        # closest statement per unit: most misconceptions are then passed over without more work.
        said_by, starts = _statement_rows(rubric)
        if said_by:
            every = stacked(said_by) @ uvecs.T
            closest = np.maximum.reduceat(every, starts, axis=0)
            top = closest.max(axis=1)
        row = -1
        for m in rubric.misconceptions:
            row += bool(m.statements)
            about_it = [c for c in firm_parts if m.subject is None or c.subject == m.subject]
            hit = find_terms(m.terms, [c.part for c in about_it], claims=True, vocab=vocab) if m.terms else None
            if hit is None and rubric.subjects:
                about_it, hit = self._led(m, rubric, firm_parts, vocab)
            if hit is not None:
                evidence = next(c.sentence.text for c in about_it if c.part is hit.sentence)
                out.append(MisconceptionResult(name=m.name, penalty=m.penalty, evidence=evidence, why=m.why))
                stating.add(id(hit.sentence))
                continue
            if not m.statements or top[row] < MISCONCEPTION_SIM:
                continue
            best = closest[row]
            sims = every[starts[row]:starts[row] + len(m.statements)]
            for j in np.argsort(-best):
                text, sentence = units[int(j)]
                if best[j] < MISCONCEPTION_SIM:
                    break
                if sentence.text not in facts.firm or best[j] - right[j] < MISCONCEPTION_MARGIN:
                    continue
                if sum(1 for t in tokens(text) if t not in STOPWORDS) < MISCONCEPTION_MIN_WORDS:
                    continue
                if attributed(text):
                    # "Many people think JWT is the more secure replacement for sessions" rejects it.
                    continue
                # "PATCH does not replace the whole resource" is close in meaning to the claim it
                # rejects, and "PUT is idempotent" to "PUT is not idempotent".
                said = analyse(m.statements[int(sims[:, j].argmax())])
                if _denial_count(tokens(text)) != _denial_count(said[0].all_tokens):
                    continue
                about = m.subject or (clause_subject(said[0], rubric.subjects) if rubric.subjects else None)
                if about is not None and about not in facts.subjects_of.get(sentence.text, {None}):
                    continue
                out.append(MisconceptionResult(name=m.name, penalty=m.penalty, evidence=sentence.text, why=m.why,
                                               via="meaning"))
                stating |= {id(c.part) for c in parts if c.sentence.text == sentence.text}
                break
        return out, stating

    @staticmethod
    def _led(m: Misconception, rubric: Rubric, firm_parts: list[Clause], vocab: Vocabulary) -> tuple[list[Clause], Hit | None]:
        """A claim term opening with a subject's name, its rest stated in a clause about that
        subject (the clauses searched, and the hit)."""
        for subject, rest in subject_led(m.terms, rubric.subjects):
            if m.subject not in (None, subject):
                continue
            about_it = [c for c in firm_parts if c.subject == subject]
            for c in about_it:
                hit = find_terms([rest], [c.part], claims=True, vocab=vocab)
                # "FastAPI isn't a framework with a built-in ORM", "bad input is never a 500":
                # the claim is denied of the subject by a denial at its name (unless the claim
                # is itself a denial: "DELETE is non-idempotent").
                if hit is not None and (_POLARITY & set(tokens(rest)) or not any(
                        _denied_at(c.part.all_tokens, pos) for pos in subject_positions(c.part, rubric.subjects, subject))):
                    return about_it, hit
        return [], None

    @staticmethod
    def _closeness(rubric: Rubric, units, uvecs: np.ndarray, owner: list[int], n: int,
                   stacked: S.Stacked) -> np.ndarray:
        """(concepts, sentences) closeness of each sentence, or of its closest part, to each
        concept: a long sentence that says several things dilutes each in one vector ("treat rows
        as ordinary objects …, so … it builds the query" sits 0.37 from the mapping concept, its
        first part 0.66).  A part naming another subject of a comparison lends nothing to this
        one's concepts.  `units` are the n sentences, then their parts (`owner`: each unit's sentence)."""
        both = S.concept_closeness(rubric.concepts, stacked, uvecs)
        sims, part = both[:, :n], both[:, n:]
        if len(units) == n:
            return sims
        if rubric.subjects:
            about = [clause_subject(analyse(t)[0], rubric.subjects) for t, _ in units[n:]]
            other = np.array([[c.subject is not None and a not in (None, c.subject) for a in about]
                              for c in rubric.concepts])
            part = np.where(other, -1.0, part)
        np.maximum.at(sims.T, owner[n:], part.T)
        return sims

    def _concepts(self, rubric: Rubric, lent: list[tuple[str, ...]], claims: list[_Claim], facts: _SentenceFacts, sents,
                  units, uvecs: np.ndarray, owner: list[int], stacked: S.Stacked, wrong: set[str],
                  listing: bool = False) -> list[ConceptResult]:
        """Each concept's result: shown by terms, else partial credit by meaning from a firm
        sentence about its subject, or a part of it (one concept per clause of the sentence, or per
        WORDS_PER_MEANING words, less those its terms show)."""
        sims = self._closeness(rubric, units, uvecs, owner, len(sents), stacked)  # concepts x sentences
        svecs = uvecs[:len(sents)]
        spoken: list[set[str | None]] | None = None
        for i, more in enumerate(lent):
            if not more or claims[i].shown is not None:
                continue
            borrowed = (stacked(more) @ svecs.T).max(axis=0)
            c = rubric.concepts[i]
            if c.subject is not None:
                # An exemplar's sentence is about one of the things compared: it lends its
                # meaning only to a sentence about that one alone, not to one naming both
                # ("in Django you use select_related or prefetch_related").
                if spoken is None:
                    spoken = [(facts.subjects_of.get(s.text, {None}) - {None}) | named_subjects(s, rubric.subjects)
                              for s in sents]
                borrowed = np.where([x == {c.subject} for x in spoken], borrowed, -1.0)
            sims[i] = np.maximum(sims[i], borrowed)
        for i, c in enumerate(rubric.concepts):
            for j, s in enumerate(sents):
                about = facts.subjects_of.get(s.text, {None})
                elsewhere = c.subject is not None and (listing or None not in about) and c.subject not in about
                if s.text in wrong or s.text not in facts.firm or elsewhere or claims[i].shown is not None:
                    sims[i, j] = -1.0
        # Strongest pairs first; a sentence lends its meaning to a few concepts at most: one per
        # clause, or per WORDS_PER_MEANING content words when that is more.
        capacity = [max(facts.clauses.get(s.text, 1), 1 + len(s.content) // WORDS_PER_MEANING) for s in sents]
        chosen: dict[int, int] = {}
        # What a sentence shows by its terms it has said already ("one short sentence cannot
        # evidence five concepts").
        index = {s.text: j for j, s in enumerate(sents)}
        used: dict[int, int] = {}
        for cl in claims:
            j = index.get(cl.shown.sentence.text) if cl.shown is not None else None
            if j is not None:
                used[j] = used.get(j, 0) + 1
        for flat in np.argsort(-sims, axis=None):
            i, j = divmod(int(flat), sims.shape[1])
            if sims[i, j] < MEANING_FLOOR:
                break
            if i in chosen or used.get(j, 0) >= capacity[j]:
                continue
            chosen[i] = j
            used[j] = used.get(j, 0) + 1
        out: list[ConceptResult] = []
        for i, c in enumerate(rubric.concepts):
            shown = claims[i].shown
            if shown is not None:
                out.append(ConceptResult(
                    name=c.name, weight=c.weight, required=c.required, matched=True,
                    credit=concept_credit(True, 1.0), via="terms", evidence=shown.sentence.text,
                ))
                continue
            j = chosen.get(i)
            credit = meaning_credit(sims[i, j]) if j is not None else 0.0
            matched = credit >= 0.5 * S.SEMANTIC_CONCEPT_MAX
            out.append(ConceptResult(
                name=c.name, weight=c.weight, required=c.required, matched=matched,
                credit=credit, via="semantic" if credit > 0 else "none",
                evidence=sents[j].text if credit > 0 else None, hint=None if matched else c.hint,
            ))
        return out


def claimed_share(parts: Sequence[Clause], wrong: set[str]) -> Signal:
    """Signal `claimed`: the share of the answer's content words said as its own firm claim in a
    sentence that states no misconception; guesses, tautologies and wrong statements are words
    an answer gets no credit for, by terms or by likeness.  Others' views ("some think PATCH
    replaces the whole resource; it does not") count neither way: naming a misconception to
    reject it is no error."""
    total = sum(len(c.part.content) for c in parts if not c.attributed)
    kept = sum(len(c.part.content) for c in parts if c.firm and c.sentence.text not in wrong)
    share = kept / total if total else 1.0
    return Signal(name=CLAIMED, value=round(share, 4), scorer=NAME,
                  explanation=f"{share:.0%} of the answer's words are firm claims that state no misconception")


def _claimed_wrong(concepts: Sequence[Concept], claims: Sequence[_Claim]) -> list[MisconceptionResult]:
    """The misconceptions concepts' claims make: said of the other subject, or denied of their own."""
    out = []
    for c, cl in zip(concepts, claims):
        if cl.shown is None and cl.swapped is not None:
            out.append(MisconceptionResult(
                name=f"Swapped roles: {c.name} (said of {cl.swapped.subject})", via="swapped",
                penalty=_auto_penalty(c), evidence=cl.swapped.sentence.text,
                why=f"That is true of {c.subject}, not {cl.swapped.subject}: {c.description}",
            ))
        elif cl.shown is None and cl.denied is not None:
            out.append(MisconceptionResult(
                name=f"Denies: {c.name}", via="denied", penalty=_auto_penalty(c),
                evidence=cl.denied.sentence.text, why=c.description,
            ))
    return out


def _auto_penalty(concept: Concept) -> float:
    # A swapped or denied required concept is the heart of the question.
    return 2.0 if concept.required else 1.0
