"""A whole `grader batch` job as one function: check the options, validate the file, grade
(locally or with Ray), detect copies, write the reports, and say how the job ended.

The CLI parses arguments into `BatchOptions`, calls `run_job`, and renders the `BatchOutcome`
(summary table, messages, exit status); nothing here prints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from grader.bank import Bank
from grader.batch.copies import CopyDetector
from grader.batch.ingest import AnswerRow, RowProblem, Source, iter_rows, open_source
from grader.batch.journal import BatchSummary
from grader.bank import question_for_row
from grader.batch.plan import BatchPlan, plan_batch
from grader.batch.run import CHUNK_ROWS, Reviewer
from grader.config import Settings
from grader.errors import InputError

if TYPE_CHECKING:
    from grader.llm import LLMUsage
    from grader.reports.aggregate import BatchReport
    from grader.scoring import Grader

# Exit statuses of a batch that ran to the end (errors are GraderError's own: 2 for input).
EXIT_FAILED_ROWS = 1
EXIT_UNDER_FAIL_MARK = 3

Progress = Callable[[float], None]
# Runs the grading: given how many rows will be graded and the grading itself (a function of
# a progress callback, or of None), returns what the grading returns.  A progress bar, say.
ProgressRunner = Callable[[int, Callable[[Progress | None], BatchSummary]], BatchSummary]


class BatchOptions(BaseModel):
    """What `grader batch` was asked to do (its options, parsed)."""

    input: str = Field(description="Answer file: .csv, .jsonl or .json; '-' reads JSONL from standard input.")
    out: list[Path] = Field(default_factory=list, description="Outputs; format by extension.")
    results: Path | None = Field(default=None, description="Results file (default: next to the first output).")
    resume: bool = False
    force: bool = False
    skip_invalid: bool = False
    by: Literal["answer", "candidate"] = "answer"
    pass_mark: float = Field(default=60.0, ge=0, le=100)
    fail_under: float | None = Field(default=None, ge=0, le=100)
    input_format: str | None = None
    llm: bool = False
    llm_weight: float | None = Field(default=None, ge=0, le=1)
    no_cache: bool = False
    dry_run: bool = False
    calibration: Path | None = None
    model: Path | None = None
    graded: Path | None = Field(default=None, description="Human-graded answers to learn from.")
    chunk_size: int = Field(default=CHUNK_ROWS, ge=1)
    engine: Literal["local", "ray"] = "local"
    ray_address: str | None = None
    check: bool = Field(default=False, description="Validate the file only: no grading, no model loaded.")
    questions: list[str] | None = Field(default=None, description="The questions every candidate was asked.")
    timestamp: bool = Field(default=False, description="Put the time of the run in the reports (not reproducible).")


class CheckSummary(BaseModel):
    """`--check`: what validating the file found."""

    source: str
    rows: int
    valid: int
    candidates: int
    questions: int
    skipped: int = Field(description="Questions asked of a candidate who gave no row for them.")
    problems: list[RowProblem]


class DryRunCount(BaseModel):
    """`--llm --dry-run`: the LLM requests grading would make."""

    requests: int
    cached: int
    empty: int
    model: str


@dataclass
class BatchOutcome:
    """How a job ended: what was graded, the report, and the exit status it calls for."""

    summary: BatchSummary | None = None
    report: BatchReport | None = None
    outputs: list[Path] = field(default_factory=list)
    llm_usage: LLMUsage | None = None
    dry_run: DryRunCount | None = None
    check: CheckSummary | None = None
    overall_percent: float | None = None
    exit_code: int = 0

    @property
    def under_fail_mark(self) -> bool:
        return self.exit_code == EXIT_UNDER_FAIL_MARK


def check_options(opts: BatchOptions) -> None:
    """The options' own errors, before any file is read."""
    from grader.reports.outputs import output_format

    for o in opts.out:
        output_format(o)
    if opts.input_format and opts.input_format not in ("csv", "jsonl", "json"):
        raise InputError(f"--input-format: {opts.input_format!r} is not csv, jsonl or json")
    if opts.engine == "ray":
        from grader.batch.ray import require_ray

        require_ray()  # says how to install it, before any work
        if opts.llm:
            raise InputError("--llm: not available with --engine ray yet; point the LLM at a server and use the local engine")
    if opts.dry_run and not opts.llm:
        raise InputError("--dry-run: only means something with --llm")


def results_path_for(opts: BatchOptions, settings: Settings) -> Path:
    """--results, else `OUT.results.jsonl` beside the first output (named after it, so runs
    with other outputs have journals of their own), else `INPUT.results.jsonl` in the reports folder."""
    if opts.results is not None:
        return opts.results
    if opts.out:
        first = opts.out[0]
        path = first.with_name(f"{first.stem}.results.jsonl")
        return path if path not in opts.out else first.with_name(f"{first.stem}.journal.jsonl")
    stem = "stdin" if opts.input == "-" else Path(opts.input).stem
    return settings.reports_dir / f"{stem}.results.jsonl"


def refuse_overwrite(opts: BatchOptions, results_path: Path) -> None:
    """Without --force or --resume, an existing results file or output is an error saying what to do."""
    if opts.force or opts.resume:
        return
    if results_path.exists():
        raise InputError(f"{results_path}: already exists (the results of an earlier run, kept for --resume); "
                         "--resume continues that run, --force starts over, --results FILE journals elsewhere")
    for p in opts.out:
        if p.exists():
            raise InputError(f"{p}: already exists; --force overwrites it (or choose another --out)")


def run_job(opts: BatchOptions, settings: Settings, *, progress: ProgressRunner | None = None) -> BatchOutcome:
    """Run a batch job to the end; raises GraderError (one line) for anything the user can fix."""
    from grader.bank import load_bank

    check_options(opts)
    if opts.check:
        return BatchOutcome(check=check_file(opts, settings))
    provider = _llm_provider(settings, opts.no_cache) if opts.llm else None
    bank = load_bank(settings.questions, settings.rubrics_dir)
    src = open_source(opts.input, opts.input_format)
    try:
        results_path = results_path_for(opts, settings)
        refuse_overwrite(opts, results_path)
        plan = plan_batch(src, bank, skip_invalid=opts.skip_invalid, questions=opts.questions)
        if opts.dry_run:
            return BatchOutcome(dry_run=llm_dry_run(src, bank, plan, provider))
        from grader.scoring import grader_from_settings

        grader = grader_from_settings(settings, opts.calibration, opts.model, opts.graded)
        detector = CopyDetector()

        def on_vectors(rows, vecs):
            for r, v in zip(rows, vecs):
                detector.add(r.question_id, r.candidate, r.answer, v)

        reviewer = batch_reviewer(settings, provider, opts.llm_weight) if provider is not None else None
        if opts.engine == "ray":
            from grader.batch.ray import run_batch_ray

            def grade(cb: Progress | None) -> BatchSummary:
                # The actors learn from the same graded answers (a setting travels to them).
                actor_settings = settings.model_copy(update={"graded": opts.graded or settings.graded})
                return run_batch_ray(src, bank, grader, plan, results_path, settings=actor_settings,
                                     calibration=opts.calibration, model=opts.model, resume=opts.resume,
                                     address=opts.ray_address, on_progress=cb, on_vectors=on_vectors,
                                     chunk_rows=opts.chunk_size)
        else:
            from grader.batch.run import run_batch

            def grade(cb: Progress | None) -> BatchSummary:
                return run_batch(src, bank, grader, plan, results_path, resume=opts.resume, on_progress=cb,
                                 on_vectors=on_vectors, chunk_rows=opts.chunk_size, reviewer=reviewer)
        summary = progress(plan.valid, grade) if progress is not None else grade(None)
        outcome = finish(summary, plan, src, bank, grader, detector, opts)
        outcome.llm_usage = reviewer.usage if reviewer is not None else None  # type: ignore[union-attr]
        return outcome
    finally:
        src.close()


def check_file(opts: BatchOptions, settings: Settings) -> CheckSummary:
    """`--check`: validate the file as a run would, grading nothing and loading no model."""
    from grader.bank import load_bank

    bank = load_bank(settings.questions, settings.rubrics_dir)
    src = open_source(opts.input, opts.input_format)
    try:
        plan = plan_batch(src, bank, skip_invalid=True, questions=opts.questions, raise_problems=False)
    finally:
        src.close()
    return CheckSummary(source=src.display, rows=plan.rows, valid=plan.valid, candidates=len(plan.candidates),
                        questions=len(plan.question_ids), skipped=plan.expected - plan.valid,
                        problems=plan.problems)


def finish(summary: BatchSummary, plan: BatchPlan, src: Source, bank: Bank, grader: Grader,
           detector: CopyDetector, opts: BatchOptions) -> BatchOutcome:
    """Copies, the report and the outputs of a graded batch; the exit status it calls for."""
    from grader.reports.aggregate import build_report, ordered_records
    from grader.reports.outputs import write_outputs
    from grader.batch.decisions import human_review

    custom: dict[str, AnswerRow] = {}
    if any(q not in bank.questions for q in plan.question_ids):
        for r in iter_rows(src):
            if isinstance(r, AnswerRow) and r.question_id not in bank.questions and question_for_row(r, bank):
                custom.setdefault(r.question_id, r)
    pairs = detector.pairs()
    scored_by = grader.scored_by()

    def records():
        return ordered_records(summary.results_path, plan.assigned, bank, custom, scored_by)

    rep = build_report(records(), source=src.display, pass_mark=opts.pass_mark, pairs=pairs,
                       pairs_total=detector.total, model=" + ".join(m for m in scored_by.values() if m),
                       n_rows_hint=plan.expected, timestamp=opts.timestamp,
                       # --force starts over: decisions about the old answers no longer apply.
                       human=None if opts.force else human_review(summary.results_path))
    write_outputs(opts.out, records, lambda: rep, by=opts.by)
    total = sum(c.total for c in rep.candidates)
    max_total = sum(c.max_total for c in rep.candidates)
    overall = 100 * total / max_total if max_total else 0.0
    if summary.failed:
        code = EXIT_FAILED_ROWS
    elif opts.fail_under is not None and overall < opts.fail_under:
        code = EXIT_UNDER_FAIL_MARK
    else:
        code = 0
    return BatchOutcome(summary=summary, report=rep, outputs=list(opts.out), overall_percent=overall, exit_code=code)


# ----------------------------------------------------------------------------- LLM


def _llm_provider(settings: Settings, no_cache: bool):
    """The configured LLM (a review or a checklist, one judge or a panel), or a one-line
    ConfigError naming the missing setting."""
    from grader.llm import make_provider

    return make_provider(settings, use_cache=not no_cache)


def batch_reviewer(settings: Settings, provider, weight: float | None) -> Reviewer:
    """Reviews each graded chunk with the LLM, concurrently; sums the token usage in `.usage`."""
    from grader.llm import BlendParams, LLMUsage, review_many

    params = BlendParams.from_settings(settings, weight)
    total = LLMUsage()

    def reviewer(items, results):
        out, usage = review_many([(it.question, it.rubric, it.answer, r) for it, r in zip(items, results)],
                                 provider, settings.llm_concurrency, params=params)
        for f in LLMUsage.model_fields:
            setattr(total, f, getattr(total, f) + getattr(usage, f))
        return out

    reviewer.usage = total  # type: ignore[attr-defined]
    return reviewer


def llm_dry_run(src: Source, bank: Bank, plan: BatchPlan, provider) -> DryRunCount:
    """How many LLM requests grading the plan's rows would make (empty and cached answers need none)."""
    n = cached = empty = 0
    for r in plan.rows_to_grade(src):
        if not r.answer.strip():
            empty += 1
        elif provider.is_cached(question_for_row(r, bank), bank.rubrics.get(r.question_id), r.answer):
            cached += 1
        else:
            n += 1
    return DryRunCount(requests=n, cached=cached, empty=empty, model=provider.model)
