"""A batch run as the review app sees it: the results file's records, loaded once, indexed."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, PrivateAttr, ValidationError

from grader.errors import InputError
from grader.models import BatchRecord


class ReviewRun(BaseModel):
    """Every graded answer of one run, in input order, with its candidates and questions."""

    results_path: Path
    records: list[BatchRecord]
    _by_key: dict[tuple[str, str], int] = PrivateAttr(default_factory=dict)
    _candidates: list[str] = PrivateAttr(default_factory=list)
    _questions: list[str] = PrivateAttr(default_factory=list)
    _by_candidate: dict[str, list[int]] = PrivateAttr(default_factory=dict)
    _by_question: dict[str, list[int]] = PrivateAttr(default_factory=dict)

    def model_post_init(self, __context) -> None:
        for i, r in enumerate(self.records):
            self._by_key[(r.candidate, r.question_id)] = i
            self._by_candidate.setdefault(r.candidate, []).append(i)
            self._by_question.setdefault(r.question_id, []).append(i)
        self._candidates = list(self._by_candidate)
        self._questions = list(self._by_question)

    @property
    def candidates(self) -> list[str]:
        """Candidates in order of first appearance; a page's candidate number is an index here."""
        return self._candidates

    @property
    def questions(self) -> list[str]:
        """Question ids in order of first appearance; a page's question number is an index here."""
        return self._questions

    def of_candidate(self, candidate: str) -> list[int]:
        return self._by_candidate.get(candidate, [])

    def of_question(self, question_id: str) -> list[int]:
        return self._by_question.get(question_id, [])

    def index(self, candidate: str, question_id: str) -> int | None:
        return self._by_key.get((candidate, question_id))


def resolve_results(run: Path) -> Path:
    """RUN is a results file, or the folder a batch wrote its reports to (its one `*.results.jsonl`)."""
    if run.is_dir():
        found = sorted(run.glob("*.results.jsonl")) or sorted(run.glob("*.journal.jsonl"))
        if not found:
            raise InputError(f"{run}: no batch results file (*.results.jsonl) in this folder")
        if len(found) > 1:
            names = ", ".join(p.name for p in found)
            raise InputError(f"{run}: several results files ({names}); name the one to review")
        return found[0]
    if not run.exists():
        raise InputError(f"{run}: file not found")
    return run


def load_run(run: Path) -> ReviewRun:
    """Read a run's results file; a bad record is a one-line error naming file and line.
    A torn last line (a batch killed mid-write) is left out, as --resume would."""
    path = resolve_results(Path(run))
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    records: list[BatchRecord] = []
    seen: set[tuple[str, str]] = set()
    lines = data.split(b"\n")
    for lineno, raw in enumerate(lines, start=1):
        if lineno == len(lines):
            break  # after the last newline: empty, or a torn record
        if not raw.strip():
            continue
        try:
            rec = BatchRecord.model_validate_json(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(x) for x in err["loc"])
            if err["type"] == "json_invalid":
                raise InputError(f"{path}:{lineno}: not a grader results record (invalid JSON)") from None
            raise InputError(f"{path}:{lineno}: {where or 'record'}: {err['msg']}") from None
        key = (rec.candidate, rec.question_id)
        if key in seen:
            raise InputError(f"{path}:{lineno}: {json.dumps(rec.candidate)} answered "
                             f"{json.dumps(rec.question_id)} twice in one results file")
        seen.add(key)
        records.append(rec)
    if not records:
        raise InputError(f"{path}: no graded answers in this results file")
    records.sort(key=lambda r: (r.line is None, r.line or 0))
    return ReviewRun(results_path=path, records=records)
