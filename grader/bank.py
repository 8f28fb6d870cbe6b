"""The question bank (`questions.json`) and its rubrics (`rubrics/*.toml`)."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ValidationError

from grader.errors import InputError
from grader.models import AnswerRow, ExemplarSet, Question, Rubric
from grader.text import STOPWORDS, stem, term_stems, tokens


def describe_validation(exc: ValidationError) -> str:
    """First problem of a pydantic error as 'field.path: message'."""
    err = exc.errors()[0]
    loc = ".".join(str(x) for x in err["loc"]) or "(root)"
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    msg = err["msg"]
    if not err["loc"] and msg.startswith("Value error, "):
        # A whole-model check names its own field ("concepts[1].name: duplicate name 'X'").
        return f"{msg.removeprefix('Value error, ')}{more}"
    return f"{loc}: {msg}{more}"


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(f"{path}:{line}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None


def load_questions(path: Path) -> list[Question]:
    """Questions of a bank file, validated; ids unique."""
    text = _read_text(path)
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    if not isinstance(raw, list):
        raise InputError(f"{path}: expected a JSON list of questions")
    questions: list[Question] = []
    seen: set[str] = set()
    for i, obj in enumerate(raw):
        try:
            q = Question.model_validate(obj)
        except ValidationError as exc:
            raise InputError(f"{path}: question [{i}] {describe_validation(exc)}") from None
        if q.id in seen:
            raise InputError(f"{path}: question [{i}] id: duplicate id {q.id!r}")
        seen.add(q.id)
        questions.append(q)
    return questions


def _load_toml(path: Path, shape: type[BaseModel]):
    text = _read_text(path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: invalid TOML ({exc})") from None
    try:
        return shape.model_validate(raw)
    except ValidationError as exc:
        raise InputError(f"{path}: {describe_validation(exc)}") from None


def load_rubric(path: Path) -> Rubric:
    """One rubric file, validated."""
    return _load_toml(path, Rubric)


def load_exemplars(path: Path) -> ExemplarSet:
    """One question's graded exemplars file, validated."""
    return _load_toml(path, ExemplarSet)


def with_exemplars(rubric: Rubric, path: Path) -> Rubric:
    """The rubric with the graded exemplars of its side file added (when there is one)."""
    if not path.exists():
        return rubric
    extra = load_exemplars(path)
    if extra.question_id != rubric.question_id:
        raise InputError(f"{path}: question_id: {extra.question_id!r} does not match file name")
    for i, e in enumerate(extra.exemplars):
        if e.score > rubric.points:
            raise InputError(f"{path}: exemplars.{i}.score: {e.score:g} is above the rubric's {rubric.points:g} points")
    return rubric.model_copy(update={"exemplars": rubric.exemplars + extra.exemplars})


def exemplars_path(rubrics_dir: Path, qid: str) -> Path:
    """Where a question's graded exemplars live: beside its rubric."""
    return rubrics_dir / f"{qid}{EXEMPLARS_SUFFIX}"


@dataclass
class Bank:
    """Questions with their rubrics, looked up by id."""

    questions: dict[str, Question]
    rubrics: dict[str, Rubric] = field(default_factory=dict)

    def get(self, qid: str) -> Question:
        try:
            return self.questions[qid]
        except KeyError:
            raise InputError(f"unknown question id {qid!r} (see `grader questions list`)") from None

    def topics(self) -> list[str]:
        return list(dict.fromkeys(q.topic for q in self.questions.values()))

    def by_topic(self, topic: str | None) -> list[Question]:
        if not topic:
            return list(self.questions.values())
        t = topic.strip().lower()
        return [q for q in self.questions.values() if q.topic.lower() == t or t in q.topic.lower()]


EXEMPLARS_SUFFIX = ".exemplars.toml"
# Below these, `grader rubric validate` warns: the scorer leans on both.
MIN_MISCONCEPTIONS = 5
MIN_EXEMPLARS = 8


def rubric_path(rubrics_dir: Path, qid: str) -> Path:
    # Ids are slugs (validated), so this path cannot leave the rubric folder.
    return rubrics_dir / f"{qid}.toml"


def load_bank(questions_path: Path, rubrics_dir: Path, *, require_rubrics: bool = True,
              only: str | None = None) -> Bank:
    """Load the bank and the rubric of every question (with `only`, of that question alone)."""
    questions = load_questions(questions_path)
    bank = Bank({q.id: q for q in questions})
    for q in questions:
        if only is not None and q.id != only:
            continue
        p = rubric_path(rubrics_dir, q.id)
        if not p.exists():
            if require_rubrics:
                raise InputError(f"{p}: missing rubric for question {q.id!r}")
            continue
        r = load_rubric(p)
        if r.question_id != q.id:
            raise InputError(f"{p}: question_id: {r.question_id!r} does not match file name")
        bank.rubrics[q.id] = with_exemplars(r, exemplars_path(rubrics_dir, q.id))
    return bank


class Problem(BaseModel):
    file: str
    field: str
    message: str
    severity: str = "error"


def _question_only(term: str, question_words: set[str]) -> bool:
    words = term_stems(term)
    return bool(words) and all(s in question_words for _, s in words)


def validate_rubrics(questions_path: Path, rubrics_dir: Path) -> list[Problem]:
    """Every problem of every rubric against the bank, with file and field."""
    problems: list[Problem] = []
    try:
        questions = {q.id: q for q in load_questions(questions_path)}
    except InputError as exc:
        return [Problem(file=str(questions_path), field="", message=str(exc))]
    files = sorted(p for p in rubrics_dir.glob("*.toml") if not p.name.endswith(EXEMPLARS_SUFFIX)) \
        if rubrics_dir.is_dir() else []
    if not rubrics_dir.is_dir():
        problems.append(Problem(file=str(rubrics_dir), field="", message="not a folder"))
    found = set()
    for p in files:
        try:
            r = load_rubric(p)
        except InputError as exc:
            msg = str(exc).removeprefix(f"{p}: ")
            fld, _, rest = msg.partition(": ")
            problems.append(Problem(file=str(p), field=fld if rest else "", message=rest or msg))
            continue
        found.add(r.question_id)
        if r.question_id != p.stem:
            problems.append(Problem(file=str(p), field="question_id",
                                    message=f"{r.question_id!r} does not match the file name"))
        q = questions.get(r.question_id)
        if q is None:
            problems.append(Problem(file=str(p), field="question_id",
                                    message=f"no question {r.question_id!r} in {questions_path}"))
            continue
        problems += _exemplar_problems(r, exemplars_path(rubrics_dir, r.question_id))
        if len(r.misconceptions) < MIN_MISCONCEPTIONS:
            problems.append(Problem(
                file=str(p), field="misconceptions", severity="warning",
                message=f"{len(r.misconceptions)} misconception(s); a bank question should list at least "
                f"{MIN_MISCONCEPTIONS} that interviewers hear",
            ))
        qwords = {stem(t) for t in tokens(q.question) if t not in STOPWORDS}
        for i, c in enumerate(r.concepts):
            for j, t in enumerate(c.terms):
                if _question_only(t, qwords):
                    problems.append(Problem(
                        file=str(p), field=f"concepts.{i}.terms.{j}", severity="warning",
                        message=f"term {t!r} uses only words of the question, so restating "
                        "the question would earn the concept",
                    ))
    for qid in questions:
        if qid not in found:
            problems.append(Problem(file=str(rubric_path(rubrics_dir, qid)), field="",
                                    message=f"missing rubric for question {qid!r}"))
    return problems


def _exemplar_problems(rubric: Rubric, path: Path) -> list[Problem]:
    """A rubric's graded exemplars: the side file valid, enough of them, grades within its points."""
    try:
        merged = with_exemplars(rubric, path)
    except InputError as exc:
        msg = str(exc).removeprefix(f"{path}: ")
        fld, _, rest = msg.partition(": ")
        return [Problem(file=str(path), field=fld if rest else "", message=rest or msg)]
    if len(merged.exemplars) < MIN_EXEMPLARS:
        return [Problem(file=str(path), field="exemplars", severity="warning",
                        message=f"{len(merged.exemplars)} graded exemplar(s); at least {MIN_EXEMPLARS} let the "
                        "scorer tell right answers in other words from wrong ones in the right words")]
    return []


def question_for_row(row: AnswerRow, bank: Bank) -> Question | None:
    """The bank question, or one made from the row's own question and reference answer."""
    if row.question_id in bank.questions:
        return bank.questions[row.question_id]
    if row.question and row.reference_answer and row.reference_answer.strip():
        # Free-form ids from the input are kept as they are (not bank slugs).
        return Question.model_construct(
            id=row.question_id, topic=row.topic or "Custom", question=row.question,
            model_answer=row.reference_answer,
        )
    return None
