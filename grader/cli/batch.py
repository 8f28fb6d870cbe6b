"""`grader batch`: many candidates' answers in, ranked reports out."""

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from grader.cli import options
from grader.cli.app import app
from grader.cli.context import console, settings
from grader.cli.progress import progress_bar
from grader.errors import Interrupted, listed


class Engine(str, Enum):
    local = "local"
    ray = "ray"


class ByFormat(str, Enum):
    answer = "answer"
    candidate = "candidate"


EXIT_STATUSES = """Exit status:

\b
  0    every answer graded (with --check: the file is valid)
  1    some answers could not be graded (listed on standard error)
  2    bad input or usage: each problem on a line naming file, line and field
  3    the overall percent is below --fail-under
  130  interrupted (Ctrl-C); graded answers are kept: rerun with --resume
"""


@app.command(epilog=EXIT_STATUSES)
def batch(
    input: str = typer.Argument(..., metavar="FILE", help="Answers: .csv (',' ';' or tab), .jsonl or .json ('-' reads JSONL from standard input). Columns: candidate, question_id, answer; optional submission_id, question, reference_answer, topic, questions."),
    out: list[Path] = typer.Option([], "--out", "-o", metavar="FILE", help="Output, repeatable; format by extension: .jsonl .json .csv .md .html."),
    check: bool = typer.Option(False, "--check", help="Only validate FILE: list every problem, print a summary, grade nothing."),
    questions: Optional[str] = typer.Option(None, "--questions", metavar="ID,ID,...", help="The questions every candidate was asked: one without an answer counts as skipped (a 'questions' column in FILE says it per candidate). Default: every question in FILE."),
    results: Optional[Path] = typer.Option(None, "--results", metavar="FILE", help="Results file, appended as answers are graded, read by --resume (default: OUT.results.jsonl beside the first --out)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run; grade only rows without a result."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing results and outputs."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Grade the valid rows and list the others."),
    by: ByFormat = typer.Option(ByFormat.answer, "--by", help="CSV rows: one per answer, or one per candidate."),
    pass_mark: float = typer.Option(60.0, "--pass-mark", min=0, max=100, metavar="PERCENT", help="Percent a candidate needs to pass."),
    fail_under: Optional[float] = typer.Option(None, "--fail-under", min=0, max=100, metavar="PERCENT", help="Exit 3 when the overall percent is below this."),
    input_format: Optional[str] = typer.Option(None, "--input-format", metavar="FORMAT", help="csv, jsonl or json (default: by the extension of FILE)."),
    timestamp: bool = typer.Option(False, "--timestamp", help="Put the time of the run in the HTML and Markdown reports (they are otherwise byte-for-byte reproducible)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar or summary."),
    llm: options.Llm = False,
    llm_weight: options.LlmWeight = None,
    no_cache: options.NoCache = False,
    dry_run: bool = typer.Option(False, "--dry-run", help="With --llm: say how many LLM requests would be made, grade nothing."),
    calibration: options.Calibration = None,
    graded: options.Graded = None,
    model: options.Model = None,
    chunk_size: int = typer.Option(256, "--chunk-size", min=1, max=100_000, metavar="N", help="Rows graded and saved together."),
    engine: Engine = typer.Option(Engine.local, "--engine", help="local, or ray (Ray Data; pip install -e '.[ray]' in the grader checkout)."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", metavar="ADDRESS", help="Join this Ray cluster ('auto', 'ray://host:10001'); default: start a local Ray."),
):
    """Grade a file of candidates' answers into ranked reports.

    Every row is checked before grading starts; results are journaled as they are graded,
    so an interrupted run resumes with --resume."""
    from grader.batch.job import BatchOptions, results_path_for, run_job
    from grader.batch.plan import parse_question_list

    opts = BatchOptions(
        input=input, out=out, results=results, resume=resume, force=force, skip_invalid=skip_invalid,
        by=by.value, pass_mark=pass_mark, fail_under=fail_under, input_format=input_format, llm=llm,
        llm_weight=llm_weight, no_cache=no_cache, dry_run=dry_run, calibration=calibration, model=model, graded=graded,
        chunk_size=chunk_size, engine=engine.value, ray_address=ray_address, check=check,
        questions=parse_question_list(questions), timestamp=timestamp,
    )

    def with_bar(total: int, work):
        with progress_bar("Grading", total=total, show=not quiet, rate="answers") as bar:
            return work(None if bar is None else bar.advance)

    try:
        outcome = run_job(opts, settings(), progress=with_bar)
    except KeyboardInterrupt:
        if check or dry_run:
            raise
        path = results_path_for(opts, settings())
        raise Interrupted(f"interrupted; the answers graded so far are kept in {path}: "
                          "run the same command with --resume to continue") from None
    _render(outcome, opts, quiet)


def _render(outcome, opts, quiet: bool) -> None:
    """The LLM dry run, or the summary table and messages; exit as the outcome says."""
    from rich.markup import escape
    from rich.table import Table

    if outcome.check is not None:
        _render_check(outcome.check)
        return
    if outcome.dry_run is not None:
        d = outcome.dry_run
        typer.echo(f"--dry-run: {d.requests} LLM request(s) would be made ({d.cached} answer(s) cached, "
                   f"{d.empty} empty); model {d.model}")
        return
    summary, rep = outcome.summary, outcome.report
    con = console()
    if outcome.llm_usage is not None and not quiet:
        con.print(outcome.llm_usage.summary())
    if not quiet:
        t = Table(title=f"{rep.counts} · pass mark {opts.pass_mark:g}%")
        for col, just in (("rank", "right"), ("candidate", "left"), ("total", "right"), ("%", "right"),
                          ("result", "left"), ("answered", "right"), ("flags", "right")):
            t.add_column(col, justify=just)
        for c in rep.candidates[:50]:
            t.add_row(str(c.rank), escape(c.candidate), f"{c.total:g}/{c.max_total:g}", f"{c.percent:g}",
                      "[green]pass[/]" if c.passed else "[red]fail[/]", f"{c.answered}/{c.answered + c.skipped}",
                      str(c.flags or ""))
        con.print(t)
        if len(rep.candidates) > 50:
            con.print(f"… and {len(rep.candidates) - 50} more in the reports")
        if rep.pairs:
            con.print(f"[yellow]{rep.pairs_total} pair(s) of near-identical answers[/] (listed in the reports)")
        con.print(f"Graded {summary.graded_now} now, {summary.already_done} from before; results in {summary.results_path}")
        for p in outcome.outputs:
            con.print(f"Wrote {p}")
    err = console(stderr=True)
    for line in listed([str(p) for p in summary.skipped], "skipped "):
        err.print(escape(line), soft_wrap=True)
    for f in summary.failed:
        err.print(f"[red]not graded[/] {escape(f)}", soft_wrap=True)
    if outcome.under_fail_mark:
        err.print(f"overall {outcome.overall_percent:.1f}% is under --fail-under {opts.fail_under:g}%")
    if outcome.exit_code:
        raise typer.Exit(outcome.exit_code)


def _render_check(c) -> None:
    """`--check`: every problem on standard error (one per line), a summary; exit 2 if any."""
    from rich.markup import escape

    err = console(stderr=True)
    for line in listed([str(p) for p in c.problems], "error: "):
        err.print(escape(line), soft_wrap=True)
    typer.echo(f"{c.source}: {c.rows} row(s), {c.valid} valid; {c.candidates} candidate(s), {c.questions} "
               f"question(s), {c.skipped} skipped question(s); {len(c.problems)} problem(s)")
    if c.problems:
        raise typer.Exit(2)
