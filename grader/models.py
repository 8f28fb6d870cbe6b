"""Every data shape grader reads or writes: questions, rubrics and grading results."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SLUG = r"^[a-z0-9][a-z0-9-]{0,79}$"


# Interview answers are a few paragraphs; beyond this, text is not read (and is flagged),
# so a megabyte of padding costs no more than a long answer.
MAX_ANSWER_CHARS = 20_000

class _Strict(BaseModel):
    # Unknown fields in hand-written files are almost always typos; refuse them.
    model_config = ConfigDict(extra="forbid")


class Question(_Strict):
    """One interview question of the bank."""

    id: str = Field(pattern=SLUG, description="Stable slug, also the rubric's file name.")
    topic: str = Field(min_length=1)
    question: str = Field(min_length=1)
    model_answer: str = Field(min_length=1)


class Subject(_Strict):
    """One of the things a comparison question compares (PUT, PATCH), with the words that name it."""

    name: str = Field(min_length=1, max_length=60)
    terms: list[str] = Field(min_length=1, description="Words that name it in an answer (case-insensitive).")


class Concept(_Strict):
    """A key idea a good answer shows, with the words that show it."""

    name: str = Field(min_length=1, max_length=120)
    description: str = Field(
        min_length=1, description="One sentence stating the idea; matched semantically."
    )
    weight: float = Field(default=1.0, gt=0, le=100)
    required: bool = False
    terms: list[str] = Field(
        min_length=1,
        description="Words or phrases that show the concept: synonyms, abbreviations. "
        "Matching is case-, punctuation- and inflection-insensitive; a phrase matches "
        "when its words occur close together in one sentence.",
    )
    hint: str = Field(min_length=1, description="Shown to a candidate who missed it.")
    statements: list[str] = Field(
        default_factory=list,
        description="The idea as candidates say it in plain words, without the terms (\"you send the whole "
        "new version and the old one is thrown away\"); an answer sentence close to one of them in meaning "
        "shows the concept in part.",
    )
    subject: str | None = Field(
        default=None,
        description="The rubric subject this concept is a claim about (a `subjects` name): only a clause "
        "about that subject shows it, and the same claim made of another subject is a swapped-roles "
        "misconception.",
    )

    @field_validator("terms")
    @classmethod
    def _terms_not_blank(cls, v: list[str]) -> list[str]:
        for t in v:
            if not t.strip():
                raise ValueError("a term is empty")
            if len(t) > 200:
                raise ValueError("a term is longer than 200 characters")
        return v


class Misconception(_Strict):
    """A wrong claim that costs points when stated (and not negated, hedged or attributed to others)."""

    name: str = Field(min_length=1, max_length=120)
    terms: list[str] = Field(
        default_factory=list,
        description="Phrases that state the claim; matched like concept terms but only in an affirmed clause, "
        "their words in order (a two-word claim also in the passive: \"the hash is decrypted\" for \"decrypt "
        "the hash\"). A phrase opening with a subject's name also matches its rest in a clause about that "
        "subject (\"fastapi batteries included\" in \"FastAPI is fast, and it's batteries-included\").",
    )
    statements: list[str] = Field(
        default_factory=list,
        description="Sentences that state the claim as candidates say it; an answer sentence close to one "
        "in meaning (and closer to it than to any concept) states it.",
    )
    why: str = Field(min_length=1, description="Why the claim is wrong; shown as feedback.")
    penalty: float = Field(default=1.0, gt=0, le=100, description="Points subtracted.")
    subject: str | None = Field(
        default=None,
        description="The rubric subject this wrong claim is about (a `subjects` name): its terms count only "
        "in a clause about that subject (\"404 means the server crashed\", not \"500 when the server crashed\").",
    )

    _terms_not_blank = field_validator("terms")(Concept._terms_not_blank.__func__)

    @model_validator(mode="after")
    def _stated_somehow(self) -> "Misconception":
        if not self.terms and not self.statements:
            raise ValueError(f"misconception {self.name!r}: give terms, statements or both")
        return self


class Weights(_Strict):
    """How the rubric signal and the semantic signal combine (they are normalised to sum 1)."""

    keywords: float = Field(default=0.6, ge=0)
    semantic: float = Field(default=0.4, ge=0)

    @model_validator(mode="after")
    def _not_both_zero(self) -> "Weights":
        if self.keywords + self.semantic <= 0:
            raise ValueError("keywords and semantic weights cannot both be 0")
        return self

    def normalised(self) -> tuple[float, float]:
        total = self.keywords + self.semantic
        return self.keywords / total, self.semantic / total


ExemplarKind = Literal["strong", "other-words", "partial", "wrong-right-words", "swapped", "off-topic",
                      "hedged", "tautology", "negated", "other"]


class Exemplar(_Strict):
    """A graded example answer of one bank question: evidence the scorer leans on."""

    kind: ExemplarKind = Field(description="What sort of answer it is; the sentences of an `other-words` one "
                               "graded 70% or more count as plain-words statements of the concepts they state.")
    score: float = Field(ge=0, description="The grade an interviewer gives it, in the rubric's points.")
    reason: str = Field(min_length=1, max_length=300, description="Why it earns that grade, in one line.")
    answer: str = Field(min_length=1)


class Rubric(_Strict):
    """The marking scheme of one question."""

    question_id: str = Field(pattern=SLUG)
    points: float = Field(default=10.0, gt=0, le=1000)
    weights: Weights | None = Field(
        default=None, description="Overrides the global weights for this question."
    )
    subjects: list[Subject] = Field(
        default_factory=list,
        description="For a comparison question: the things compared, so that a claim made of the wrong one "
        "is recognised as swapped.",
    )
    concepts: list[Concept] = Field(min_length=1)
    misconceptions: list[Misconception] = Field(default_factory=list)
    exemplars: list[Exemplar] = Field(
        default_factory=list,
        description="Graded example answers; those of `<id>.exemplars.toml` beside the rubric are added.",
    )

    @model_validator(mode="after")
    def _unique_names(self) -> "Rubric":
        for i, e in enumerate(self.exemplars):
            if e.score > self.points:
                raise ValueError(f"exemplars[{i}].score: {e.score:g} is above the rubric's {self.points:g} points")
        names = {s.name for s in self.subjects}
        for kind, items in (("concepts", self.concepts), ("misconceptions", self.misconceptions)):
            for i, c in enumerate(items):
                if c.subject is not None and c.subject not in names:
                    raise ValueError(f"{kind}[{i}].subject: {c.subject!r} is not one of subjects "
                                     f"({', '.join(sorted(names)) or 'none'})")
        for kind, items in (("subjects", self.subjects), ("concepts", self.concepts), ("misconceptions", self.misconceptions)):
            seen: set[str] = set()
            for i, item in enumerate(items):
                key = item.name.strip().lower()
                if key in seen:
                    raise ValueError(f"{kind}[{i}].name: duplicate name {item.name!r}")
                seen.add(key)
        return self


class ExemplarSet(_Strict):
    """A question's graded exemplars (`rubrics/<id>.exemplars.toml`)."""

    question_id: str = Field(pattern=SLUG)
    exemplars: list[Exemplar] = Field(min_length=1)


# --------------------------------------------------------------------------- results


class ConceptResult(BaseModel):
    name: str
    weight: float
    required: bool
    matched: bool
    credit: float = Field(ge=0, le=1, description="1 for a term match; partial for meaning only.")
    via: Literal["terms", "semantic", "none"]
    evidence: str | None = Field(default=None, description="The answer sentence that showed it.")
    hint: str | None = Field(default=None, description="Set when the concept was missed.")


class MisconceptionResult(BaseModel):
    name: str
    penalty: float
    evidence: str
    why: str
    via: Literal["terms", "meaning", "swapped", "denied"] = Field(
        default="terms",
        description="How it was found: the rubric's terms, a sentence close in meaning to a stated "
        "misconception, a concept's claim made of the wrong subject, or a concept's claim denied.",
    )


class Signal(BaseModel):
    """One named piece of evidence a scorer found in an answer."""

    name: str
    value: float
    scorer: str = Field(description="The scorer that measured it.")
    explanation: str | None = None


class Contribution(BaseModel):
    """How much one signal moved the mix's fraction."""

    signal: str
    value: float = Field(description="The signal's value for this answer.")
    effect: float = Field(
        description="Its share of the fraction (rubric mix: weight x value) or, for a calibration, "
        "coefficient x standardised value on the fit's linear scale (positive raises the score)."
    )


class Components(BaseModel):
    """The signals a score was made from, and which mix made it."""

    keywords: float = Field(ge=0, le=1, description="Weighted share of the rubric's concepts shown.")
    semantic: float = Field(ge=0, le=1, description="Similarity to the model answer, mapped to 0..1.")
    semantic_raw: float = Field(description="Raw cosine against the model answer.")
    llm: float | None = None
    trained: float | None = Field(default=None, description="The trained model's score, 0..1 (--model).")
    mix: Literal["rubric", "calibration"] = Field(
        default="rubric", description="What made the fraction: the rubric mix or a calibration."
    )
    fraction: float | None = Field(
        default=None, description="The fraction of the maximum before the cap, penalties and LLM: the mix's, pulled toward the graded exemplars."
    )
    contributions: list[Contribution] = Field(
        default_factory=list, description="The mix's signals, largest effect first."
    )

    def summary(self) -> str:
        """One line saying what made the fraction, for reports."""
        if self.mix == "calibration":
            top = [c for c in self.contributions if c.signal != "on_topic_gate"][:3]
            parts = ", ".join(f"{c.signal} {c.effect:+.2f}" for c in top)
            gate = next((c for c in self.contributions if c.signal == "on_topic_gate"), None)
            text = f"calibrated from {len(self.contributions) - (gate is not None)} signals"
            text += f" (largest: {parts})" if parts else ""
            if gate is not None:
                text += f"; off-topic gate {gate.value:.0%}"
        else:
            text = f"rubric concepts {self.keywords:.0%} · similarity to the model answer {self.semantic:.0%}"
            claimed = next((c for c in self.contributions if c.signal == "claimed"), None)
            if claimed is not None:
                text += f", counted for the {claimed.value:.0%} said as firm, not wrong claims"
        return text + (f" · LLM {self.llm:.0%}" if self.llm is not None else "")


class NearestGraded(BaseModel):
    """The graded answer closest to this one in meaning, and its grade."""

    source: Literal["exemplar", "graded"] = Field(description="A bank exemplar or a user's graded answer.")
    score: float
    max_score: float
    similarity: float = Field(description="Cosine between the two whole answers.")
    answer: str
    reason: str | None = None


class GradeResult(BaseModel):
    """The scored breakdown of one answer; what `grader grade --format json` prints."""

    question_id: str
    question: str
    score: float
    max_score: float
    percent: float
    band: Literal["strong", "acceptable", "weak", "no answer"]
    components: Components
    concepts: list[ConceptResult]
    misconceptions: list[MisconceptionResult]
    flags: list[str]
    nearest_graded: NearestGraded | None = Field(
        default=None, description="The closest graded example answer, when the question has any.")
    model: str = Field(description="The embedding model that scored it.")
    trained_model: str | None = Field(
        default=None, description="The trained model (grader train) that scored it too: folder@weights hash."
    )
    learned_from: str | None = Field(
        default=None, description="The graded answers it learned from (--graded): how many, and their hash."
    )
    feedback: str | None = Field(default=None, description="LLM feedback, when asked for.")
    llm: dict | None = Field(default=None, description="LLM verdict details, when asked for.")


# --------------------------------------------------------------------------- graded answers


class GradedRow(BaseModel):
    """One human-graded answer (shared/datasets/README.md); other fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    question_id: str = Field(min_length=1)
    question: str = Field(default="", description="Empty: the bank question of that id.")
    reference_answer: str | None = Field(
        default=None, min_length=1, description="None: the bank question's model answer and rubric."
    )
    answer: str
    score: float = Field(ge=0)
    max_score: float = Field(gt=0)
    line: int = Field(default=0, exclude=True)
    from_bank: bool = Field(default=False, exclude=True, description="The question and reference came from the bank.")

    @model_validator(mode="after")
    def _score_in_range(self) -> "GradedRow":
        if self.score > self.max_score + 1e-9:
            raise ValueError(f"score: {self.score:g} is above max_score {self.max_score:g}")
        return self


# --------------------------------------------------------------------------- answers of a batch


class AnswerRow(BaseModel):
    """One candidate's answer to one question, as read from a batch input."""

    line: int
    candidate: str
    question_id: str
    answer: str
    submission_id: str | None = None
    question: str | None = None
    reference_answer: str | None = None
    topic: str | None = None
    assigned: list[str] | None = Field(default=None, description="The `questions` column: every question id this candidate was asked.")

    @property
    def key(self) -> str:
        return f"{self.candidate}\x1f{self.question_id}"


class BatchRecord(GradeResult):
    """One graded answer of a batch: the grade result plus who wrote it and where it came from."""

    candidate: str
    answer: str = Field(default="", description="The answer as graded (cut at 20,000 characters).")
    submission_id: str | None = None
    line: int | None = Field(default=None, description="Input line (row number for JSON); None: not in the input.")
    topic: str | None = None


class CopyPair(BaseModel):
    """Two candidates' near-identical answers to one question."""

    question_id: str
    candidate_a: str
    candidate_b: str
    similarity: float
    exact: bool


# --------------------------------------------------------------------------- practice sessions


class Answered(BaseModel):
    """One graded answer of a practice session."""

    answer: str
    result: GradeResult


class Session(BaseModel):
    """A `grader ask` session: what was asked, answered and scored."""

    started: str = Field(default_factory=lambda: datetime.now().isoformat(timespec="seconds"))
    answers: list[Answered] = Field(default_factory=list)

    @property
    def total(self) -> float:
        return round(sum(a.result.score for a in self.answers), 2)

    @property
    def max_total(self) -> float:
        return round(sum(a.result.max_score for a in self.answers), 2)
