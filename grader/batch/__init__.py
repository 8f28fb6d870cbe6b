"""Grading a file of many candidates' answers: validate, grade in chunks, journal, resume, report.

Modules: ingest (reading CSV/JSONL/JSON answer files), plan (validating a file before grading),
journal (the results file: records, resume, the models check), run (the local engine), ray (the
Ray engine), copies (near-identical answers), job (a whole `grader batch` job as one function).
"""

from grader.batch.copies import CopyDetector, CopyPair
from grader.batch.ingest import AnswerRow, RowProblem, Source, iter_rows, open_source
from grader.batch.journal import BatchRecord, BatchSummary, Journal, make_record, read_journal
from grader.bank import question_for_row
from grader.batch.plan import BatchPlan, plan_batch
from grader.batch.run import CHUNK_ROWS, run_batch
from grader.batch.ray import INSTALL_HINT, require_ray, run_batch_ray
from grader.batch.job import BatchOptions, BatchOutcome, DryRunCount, run_job

__all__ = [
    "AnswerRow", "BatchOptions", "BatchOutcome", "BatchPlan", "BatchRecord", "BatchSummary", "CHUNK_ROWS",
    "CopyDetector", "CopyPair", "DryRunCount", "INSTALL_HINT", "Journal", "RowProblem", "Source",
    "iter_rows", "make_record", "open_source", "plan_batch", "question_for_row", "read_journal",
    "require_ray", "run_batch", "run_batch_ray", "run_job",
]
