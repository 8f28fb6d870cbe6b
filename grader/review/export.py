"""What a review produces: the batch report with the human scores, and the human grades as a
graded file that `--graded` reads (grader/graded_file.py), so the next batch learns from them."""

from __future__ import annotations

from pydantic import BaseModel

from grader.models import GradedRow
from grader.reports.aggregate import BatchReport, build_report
from grader.reports.human import HumanReview
from grader.review.run import ReviewRun


class GradedExport(BaseModel):
    rows: list[GradedRow]
    left_out: int = 0  # human grades of questions outside the bank (no reference answer in the results)


def review_report(run: ReviewRun, human: HumanReview, *, pass_mark: float = 60.0) -> BatchReport:
    """The batch report of a run, with the reviewers' scores where there are any, marked as such."""
    models = dict.fromkeys(m for r in run.records for m in (r.model, r.trained_model) if m)
    return build_report(iter(run.records), source=str(run.results_path), pass_mark=pass_mark, pairs=[],
                        n_rows_hint=len(run.records), model=" + ".join(models), human=human)


def report_html(run: ReviewRun, human: HumanReview, *, pass_mark: float = 60.0) -> str:
    from grader.reports.html import render_html

    return render_html(review_report(run, human, pass_mark=pass_mark))


def graded_rows(run: ReviewRun, human: HumanReview, bank_questions: set[str]) -> GradedExport:
    """Every human-scored answer as a GradedRow.  Bank questions are named by id (the bank gives
    their text and rubric on reading); others have no reference answer in the results, so they
    are counted in `left_out`."""
    rows: list[GradedRow] = []
    left = 0
    for r in run.records:
        g = human.grades.get(f"{r.candidate}\x1f{r.question_id}")
        if g is None or not r.answer.strip():
            continue
        if r.question_id not in bank_questions:
            left += 1
            continue
        rows.append(GradedRow(question_id=r.question_id, question=r.question, answer=r.answer,
                              score=min(g.score, r.max_score), max_score=r.max_score))
    return GradedExport(rows=rows, left_out=left)


def graded_jsonl(export: GradedExport) -> str:
    """The graded file's text: one JSON object per line (question_id, question, answer, score, max_score)."""
    return "".join(row.model_dump_json(exclude={"reference_answer"}) + "\n" for row in export.rows)
