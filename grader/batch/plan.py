"""Validating an answer file before anything is graded: what will be graded, what is skipped."""

from __future__ import annotations

from pydantic import BaseModel, Field

from grader.bank import Bank, question_for_row
from grader.batch.ingest import RowProblem, Source, iter_rows
from grader.errors import InputError


class BatchPlan(BaseModel):
    """What a validation pass found: how many rows will be graded, what was skipped."""

    rows: int = 0
    valid: int = 0
    problems: list[RowProblem] = Field(default_factory=list)
    skipped_lines: set[int] = Field(default_factory=set)
    question_ids: list[str] = Field(default_factory=list)
    candidates: list[str] = Field(default_factory=list)

    def rows_to_grade(self, src: Source):
        """The source's rows that passed validation, in input order."""
        for row in iter_rows(src):
            if not isinstance(row, RowProblem) and row.line not in self.skipped_lines:
                yield row


def plan_batch(src: Source, bank: Bank, *, skip_invalid: bool) -> BatchPlan:
    """Validate every row before any grading; raises InputError unless skip_invalid."""
    plan = BatchPlan()
    seen: dict[str, int] = {}
    qids: dict[str, None] = {}
    cands: dict[str, None] = {}
    for item in iter_rows(src):
        if isinstance(item, RowProblem):
            plan.rows += 1
            plan.problems.append(item)
            if item.fatal:
                break
            plan.skipped_lines.add(item.line)
            continue
        row = item
        plan.rows += 1
        problem = None
        if question_for_row(row, bank) is None:
            problem = RowProblem(file=src.display, line=row.line, field="question_id",
                                 message=f"unknown question id {row.question_id!r} (and no question/reference_answer in the row)")
        elif row.key in seen:
            problem = RowProblem(file=src.display, line=row.line, field="candidate",
                                 message=f"duplicate answer of {row.candidate!r} to {row.question_id!r} (first at line {seen[row.key]})")
        if problem:
            plan.problems.append(problem)
            plan.skipped_lines.add(row.line)
            continue
        seen[row.key] = row.line
        qids.setdefault(row.question_id)
        cands.setdefault(row.candidate)
        plan.valid += 1
    plan.question_ids = list(qids)
    plan.candidates = list(cands)
    if plan.rows == 0:
        raise InputError(f"{src.display}: no answers in the file")
    if plan.problems and (not skip_invalid or plan.valid == 0 or any(p.fatal for p in plan.problems)):
        first = plan.problems[0]
        more = len(plan.problems) - 1
        raise InputError(str(first) + (f" (and {more} more problem(s); --skip-invalid grades the rest)" if more else ""))
    return plan
