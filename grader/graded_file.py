"""Human-graded answer files (the format of shared/datasets/README.md): reading them, and the
question each row is about."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from grader.bank import Bank
from grader.errors import InputError
from grader.models import GradedRow, Question


def _field_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(x) for x in err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    return f"{loc}: {msg}" if loc else msg


def read_graded(path: Path, limit: int | None = None, bank: Bank | None = None) -> list[GradedRow]:
    """Rows of a graded JSONL file; a bad row raises InputError with file:line: field.

    A row without a reference answer of its own must name a question of `bank`: it gets that
    question's text and model answer, marked `from_bank` (scored with the bank's rubric)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    rows: list[GradedRow] = []
    for lineno, raw in enumerate(data.splitlines(), start=1):
        try:
            line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}:{lineno}: not UTF-8 text (byte {exc.start})") from None
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{lineno}: invalid JSON ({exc.msg}, column {exc.colno})") from None
        if not isinstance(obj, dict):
            raise InputError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
        if isinstance(obj.get("question_id"), int):
            obj["question_id"] = str(obj["question_id"])
        try:
            row = GradedRow.model_validate({**obj, "line": lineno})
        except ValidationError as exc:
            raise InputError(f"{path}:{lineno}: {_field_error(exc)}") from None
        if row.reference_answer is None:
            if bank is None or row.question_id not in bank.questions:
                raise InputError(f"{path}:{lineno}: reference_answer: needed, {row.question_id!r} is not a bank question")
            q = bank.questions[row.question_id]
            row = row.model_copy(update={"question": q.question, "reference_answer": q.model_answer, "from_bank": True})
        rows.append(row)
        if limit is not None and len(rows) >= limit:
            break
    if not rows:
        raise InputError(f"{path}: no graded answers in the file")
    return rows


def question_for_graded(row: GradedRow, bank: Bank) -> Question:
    """The bank question a graded row names, or one made from its own question and reference."""
    if row.question_id in bank.questions:
        return bank.questions[row.question_id]
    return Question.model_construct(id=row.question_id, topic="Custom", question=row.question,
                                    model_answer=row.reference_answer or "")
