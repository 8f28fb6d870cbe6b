"""Validating an answer file before anything is graded: what will be graded, what is skipped,
and which questions each candidate was asked."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, Field

from grader.bank import Bank, question_for_row
from grader.batch.ingest import RowProblem, Source, iter_rows
from grader.errors import InputError, InputProblems

# How close (rapidfuzz ratio, 0-100) an id must be to a known one to be offered as "did you mean".
SUGGEST_CUTOFF = 60


class BatchPlan(BaseModel):
    """What a validation pass found: how many rows will be graded, what was skipped."""

    rows: int = 0
    valid: int = 0
    problems: list[RowProblem] = Field(default_factory=list)
    skipped_lines: set[int] = Field(default_factory=set)
    question_ids: list[str] = Field(default_factory=list)
    candidates: list[str] = Field(default_factory=list)
    assigned: dict[str, list[str]] = Field(
        default_factory=dict,
        description="The questions each candidate was asked (a `questions` column, --questions, "
                    "else every question of the file); one without a row is a skipped question.")

    def rows_to_grade(self, src: Source):
        """The source's rows that passed validation, in input order."""
        for row in iter_rows(src):
            if not isinstance(row, RowProblem) and row.line not in self.skipped_lines:
                yield row

    @property
    def expected(self) -> int:
        """Answers the report will have: every question asked of every candidate."""
        return sum(len(q) for q in self.assigned.values())


def suggest(name: str, known: Iterable[str]) -> str:
    """' (did you mean 'docker'?)' for the closest known id, or ''."""
    from rapidfuzz import fuzz, process

    best = process.extractOne(name, list(known), scorer=fuzz.ratio, score_cutoff=SUGGEST_CUTOFF)
    return f"; did you mean {best[0]!r}?" if best else ""


def parse_question_list(text: str | None) -> list[str] | None:
    """--questions 'a,b c': the ids, in order, without repeats."""
    if text is None:
        return None
    ids = list(dict.fromkeys(text.replace(",", " ").split()))
    if not ids:
        raise InputError("--questions: give at least one question id (id1,id2,...)")
    return ids


def plan_batch(src: Source, bank: Bank, *, skip_invalid: bool, questions: list[str] | None = None,
               raise_problems: bool = True) -> BatchPlan:
    """Validate every row before any grading; raises InputProblems (every problem, one per
    line) unless skip_invalid, or raise_problems is off (`--check` reports them itself)."""
    plan = BatchPlan()
    seen: dict[str, int] = {}
    qids: dict[str, None] = {}
    cands: dict[str, None] = {}
    declared: dict[str, dict[str, None]] = {}
    custom: set[str] = set()
    rows = []

    def problem(line: int, field: str, message: str) -> None:
        plan.problems.append(RowProblem(file=src.display, line=line, field=field, message=message))
        plan.skipped_lines.add(line)

    for item in iter_rows(src):
        plan.rows += 1
        if isinstance(item, RowProblem):
            plan.problems.append(item)
            if item.fatal:
                break
            plan.skipped_lines.add(item.line)
            continue
        row = item
        if question_for_row(row, bank) is None:
            hint = suggest(row.question_id, bank.questions) or " (and no question/reference_answer in the row)"
            problem(row.line, "question_id", f"unknown question id {row.question_id!r}{hint}")
            continue
        if row.key in seen:
            problem(row.line, "candidate", f"duplicate answer of {row.candidate!r} to {row.question_id!r} "
                                           f"(first at line {seen[row.key]})")
            continue
        if row.question_id not in bank.questions:
            custom.add(row.question_id)
        if row.assigned is not None:
            declared.setdefault(row.candidate, {}).update(dict.fromkeys(row.assigned))
        seen[row.key] = row.line
        rows.append((row.line, row.candidate, row.question_id, row.assigned))
    known = set(bank.questions) | custom
    for qid in questions or []:
        if qid not in known:
            plan.problems.append(RowProblem(file="--questions", line=0, field="",
                                            message=f"unknown question id {qid!r}{suggest(qid, known)}"))
    for cand, ids in declared.items():
        for qid in ids:
            if qid not in known:
                line = next(ln for ln, c, _, a in rows if c == cand and a and qid in a)
                problem(line, "questions", f"unknown question id {qid!r}{suggest(qid, known)}")
    for line, cand, qid, _ in rows:
        if line in plan.skipped_lines:
            continue
        asked = declared.get(cand) or (dict.fromkeys(questions) if questions else None)
        if asked is not None and qid not in asked:
            where = "its questions column" if cand in declared else "--questions"
            problem(line, "question_id", f"{qid!r} is not among the questions {cand!r} was asked ({where})")
            continue
        qids.setdefault(qid)
        cands.setdefault(cand)
        plan.valid += 1
    if questions:
        qids = dict.fromkeys([*questions, *qids])
    plan.candidates = list(cands)
    for cand in plan.candidates:
        asked = declared.get(cand) or (dict.fromkeys(questions) if questions else qids)
        plan.assigned[cand] = [q for q in asked if q in known]
    plan.question_ids = list(dict.fromkeys(q for q in [*qids, *(q for a in plan.assigned.values() for q in a)]
                                           if q in known))
    plan.problems.sort(key=lambda p: (p.file != src.display, p.line))
    if plan.rows == 0:
        raise InputError(f"{src.display}: no answers in the file")
    if raise_problems and plan.problems and (not skip_invalid or plan.valid == 0 or any(p.fatal for p in plan.problems)):
        hint = ("(--skip-invalid grades the valid rows)"
                if plan.valid and not any(p.fatal for p in plan.problems) and not skip_invalid else "")
        raise InputProblems([str(p) for p in plan.problems], hint if len(plan.problems) > 1 else "")
    return plan
