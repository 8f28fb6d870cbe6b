"""Command line: parses arguments, calls the core, renders. Heavy imports stay inside commands."""

from __future__ import annotations

import os
import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from grader.errors import ConfigError, GraderError, InputError

app = typer.Typer(
    name="grader",
    help="Grade free-text answers to technical interview questions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: the rich renderer costs more imports than the rest of start-up
)
questions_app = typer.Typer(help="Browse the question bank.", no_args_is_help=True)
rubric_app = typer.Typer(help="Check and describe rubrics.", no_args_is_help=True)
app.add_typer(questions_app, name="questions")
app.add_typer(rubric_app, name="rubric")


class ListFormat(str, Enum):
    table = "table"
    json = "json"


class GradeFormat(str, Enum):
    text = "text"
    json = "json"


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def _settings():
    from pydantic import ValidationError

    from grader.config import get_settings

    try:
        return get_settings()
    except ValidationError as exc:
        from grader.bank import describe_validation

        raise ConfigError(f"configuration: {describe_validation(exc)}") from None


def _bank(require_rubrics: bool = True, only: Optional[str] = None):
    from grader.bank import load_bank

    s = _settings()
    return load_bank(s.questions, s.rubrics_dir, require_rubrics=require_rubrics, only=only)


# ----------------------------------------------------------------------------- questions


@questions_app.command("list")
def questions_list(
    topic: Optional[str] = typer.Option(None, "--topic", "-t", help="Only this topic."),
    fmt: ListFormat = typer.Option(ListFormat.table, "--format", "-f", help="table or json."),
):
    """List the bank's questions."""
    bank = _bank(require_rubrics=False)
    qs = bank.by_topic(topic)
    if topic and not qs:
        raise InputError(f"--topic: no topic matches {topic!r} (topics: {', '.join(bank.topics())})")
    if fmt == ListFormat.json:
        import json

        typer.echo(json.dumps([q.model_dump(include={"id", "topic", "question"}) for q in qs],
                              indent=2, ensure_ascii=False))
        return
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=f"{len(qs)} questions")
    t.add_column("id", style="cyan", no_wrap=True)
    t.add_column("topic")
    t.add_column("question")
    for q in qs:
        t.add_row(escape(q.id), escape(q.topic), escape(q.question))
    _console().print(t)


@questions_app.command("show")
def questions_show(
    qid: str = typer.Argument(..., metavar="ID", help="Question id."),
    rubric: bool = typer.Option(True, "--rubric/--no-rubric", help="Show the rubric too."),
):
    """Show one question, its model answer and its rubric."""
    from rich.markup import escape
    from rich.panel import Panel
    from rich.table import Table

    from grader.render import question_panel

    bank = _bank(require_rubrics=False)
    q = bank.get(qid)
    con = _console()
    con.print(question_panel(q))
    con.print(Panel(escape(q.model_answer), title="Model answer", title_align="left", border_style="green"))
    r = bank.rubrics.get(q.id)
    if rubric and r:
        t = Table(title=f"Rubric · {r.points:g} points")
        t.add_column("concept")
        t.add_column("weight", justify="right")
        t.add_column("required")
        t.add_column("terms")
        for c in r.concepts:
            t.add_row(escape(c.name), f"{c.weight:g}", "yes" if c.required else "", escape(", ".join(c.terms)))
        for m in r.misconceptions:
            t.add_row(f"[magenta]✗ {escape(m.name)}[/]", f"−{m.penalty:g}", "", escape(", ".join(m.terms)))
        con.print(t)


# ----------------------------------------------------------------------------- rubric


@rubric_app.command("validate")
def rubric_validate(
    rubrics_dir: Optional[Path] = typer.Option(None, "--rubrics", help="Rubric folder."),
    questions: Optional[Path] = typer.Option(None, "--questions", help="Question bank file."),
):
    """Check every rubric against the bank; each problem with its file and field."""
    from grader.bank import validate_rubrics

    s = _settings()
    problems = validate_rubrics(questions or s.questions, rubrics_dir or s.rubrics_dir)
    con = _console()
    errors = [p for p in problems if p.severity == "error"]
    for p in problems:
        colour = "red" if p.severity == "error" else "yellow"
        where = f"{p.file}" + (f": {p.field}" if p.field else "")
        con.print(f"[{colour}]{p.severity}[/]: {where}: {p.message}", soft_wrap=True)
    if errors:
        con.print(f"[red]{len(errors)} error(s)[/]")
        raise typer.Exit(2)
    con.print(f"[green]ok[/]: every rubric is valid ({len(problems)} warning(s))")


@rubric_app.command("schema")
def rubric_schema():
    """Print the JSON Schema of the rubric format (for editors)."""
    import json

    from grader.models import Rubric

    typer.echo(json.dumps(Rubric.model_json_schema(), indent=2))


# ----------------------------------------------------------------------------- grade


def _read_answer(answer: Optional[str]) -> str:
    if answer is not None:
        return answer
    if sys.stdin is None or sys.stdin.isatty():
        raise InputError("--answer: give the answer as --answer TEXT or on standard input")
    data = sys.stdin.buffer.read()
    import codecs

    # UTF-16 with a byte-order mark is read as batch files are (Windows tools write it).
    encoding = "utf-16" if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else "utf-8-sig"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise InputError(f"standard input: not UTF-8 text (byte {exc.start})") from None


@app.command()
def grade(
    question: str = typer.Option(..., "--question", "-q", help="Question id from the bank."),
    answer: Optional[str] = typer.Option(None, "--answer", "-a", help="The answer (default: standard input)."),
    fmt: GradeFormat = typer.Option(GradeFormat.text, "--format", "-f", help="text or json."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Also write the report (.json or .md)."),
    llm: bool = typer.Option(False, "--llm", help="Also get feedback from the configured LLM (see README)."),
    llm_weight: Optional[float] = typer.Option(
        None, "--llm-weight", min=0.0, max=1.0,
        help="How far the LLM's verdict moves the score (0: feedback only; default GRADER_LLM_WEIGHT).",
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="Ask the LLM again even if its reply is cached."),
    calibration: Optional[Path] = typer.Option(None, "--calibration", help="Score with a calibration fitted on human grades (grader calibrate)."),
    model: Optional[Path] = typer.Option(None, "--model", help="Also score with a model from `grader train` (its calibration.json combines it; default GRADER_TRAINED_MODEL)."),
):
    """Grade one answer to a bank question."""
    from grader.scoring import grader_from_settings

    bank = _bank(only=question)
    q = bank.get(question)
    text = _read_answer(answer)
    if out is not None and out.suffix.lower() not in (".json", ".md", ".markdown"):
        raise InputError(f"--out: {out}: unknown report format {out.suffix!r} (use .json or .md)")
    reviewer = _llm_reviewer(llm_weight, no_cache) if llm else None
    result = grader_from_settings(_settings(), calibration, model).grade(q, bank.rubrics[q.id], text)
    if reviewer is not None:
        with _console(stderr=True).status("Asking the LLM…"):
            result = reviewer(q, bank.rubrics[q.id], text, result)
    if out is not None:
        from grader.reports.single import write_result

        write_result(out, result, text)
    if fmt == GradeFormat.json:
        typer.echo(result.model_dump_json(indent=2))
    else:
        from grader.render import result_renderable

        _console().print(result_renderable(result))


def _llm_reviewer(weight: Optional[float], no_cache: bool):
    """`--llm`: the reviewer, or a one-line ConfigError naming the missing setting."""
    from grader.llm import make_reviewer

    return make_reviewer(_settings(), weight=weight, use_cache=not no_cache)


# ----------------------------------------------------------------------------- ask


@app.command()
def ask(
    topic: Optional[str] = typer.Option(None, "--topic", "-t", help="Only questions of this topic."),
    question: Optional[str] = typer.Option(None, "--question", "-q", help="Just this question."),
    reports_dir: Optional[Path] = typer.Option(None, "--reports", help="Where to write the session report."),
    llm: bool = typer.Option(False, "--llm", help="Also get feedback from the configured LLM (see README)."),
    llm_weight: Optional[float] = typer.Option(
        None, "--llm-weight", min=0.0, max=1.0,
        help="How far the LLM's verdict moves the score (0: feedback only; default GRADER_LLM_WEIGHT).",
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="Ask the LLM again even if its reply is cached."),
):
    """Practise: answer questions in the terminal and get scored at once."""
    from grader.session import run_session

    s = _settings()
    bank = _bank()
    if question:
        qs = [bank.get(question)]
    else:
        qs = bank.by_topic(topic)
        if not qs:
            raise InputError(f"--topic: no topic matches {topic!r} (topics: {', '.join(bank.topics())})")
    extra = {"review": _llm_reviewer(llm_weight, no_cache)} if llm else {}
    code = run_session(bank, qs, s, reports_dir or s.reports_dir, _console(), **extra)
    raise typer.Exit(code)


# ----------------------------------------------------------------------------- batch


class Engine(str, Enum):
    local = "local"
    ray = "ray"


class ByFormat(str, Enum):
    answer = "answer"
    candidate = "candidate"


@app.command()
def batch(
    input: str = typer.Argument(..., metavar="FILE", help="Answers: .csv, .jsonl or .json ('-' reads JSONL from standard input)."),
    out: list[Path] = typer.Option([], "--out", "-o", help="Output, repeatable; format by extension: .jsonl .json .csv .md .html."),
    results: Optional[Path] = typer.Option(None, "--results", help="Results file, appended as answers are graded (default: next to the first --out)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run; grade only rows without a result."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing results and outputs."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Grade the valid rows and list the others."),
    by: ByFormat = typer.Option(ByFormat.answer, "--by", help="CSV rows: one per answer, or one per candidate."),
    pass_mark: float = typer.Option(60.0, "--pass-mark", min=0, max=100, help="Percent a candidate needs to pass."),
    fail_under: Optional[float] = typer.Option(None, "--fail-under", min=0, max=100, help="Exit 3 when the overall percent is below this."),
    input_format: Optional[str] = typer.Option(None, "--input-format", help="csv, jsonl or json (default: by extension)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar or summary."),
    llm: bool = typer.Option(False, "--llm", help="Also get feedback from the configured LLM (see README)."),
    llm_weight: Optional[float] = typer.Option(None, "--llm-weight", min=0.0, max=1.0,
                                               help="How far the LLM's verdict moves scores (0: feedback only)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Ask the LLM again even if its reply is cached."),
    dry_run: bool = typer.Option(False, "--dry-run", help="With --llm: say how many LLM requests would be made, grade nothing."),
    calibration: Optional[Path] = typer.Option(None, "--calibration", help="Score with a calibration fitted on human grades (grader calibrate)."),
    model: Optional[Path] = typer.Option(None, "--model", help="Also score with a model from `grader train` (its calibration.json combines it; default GRADER_TRAINED_MODEL)."),
    chunk_size: int = typer.Option(256, "--chunk-size", min=1, max=100_000, help="Rows graded and saved together."),
    engine: Engine = typer.Option(Engine.local, "--engine", help="local, or ray (Ray Data; pip install -e '.[ray]' in the checkout)."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Join this Ray cluster ('auto', 'ray://host:10001'); default: start a local Ray."),
):
    """Grade a file of many candidates' answers; ranked reports out."""
    from grader.batch.job import BatchOptions, run_job

    opts = BatchOptions(
        input=input, out=out, results=results, resume=resume, force=force, skip_invalid=skip_invalid,
        by=by.value, pass_mark=pass_mark, fail_under=fail_under, input_format=input_format, llm=llm,
        llm_weight=llm_weight, no_cache=no_cache, dry_run=dry_run, calibration=calibration, model=model,
        chunk_size=chunk_size, engine=engine.value, ray_address=ray_address,
    )
    err = _console(stderr=True)
    show = not quiet and err.is_terminal
    outcome = run_job(opts, _settings(), progress=lambda total, work: _run_with_progress(work, total, err, show))
    _finish_batch(outcome, opts, quiet)


def _llm_provider(settings, no_cache: bool):
    from grader.llm import OpenAIFeedback

    return OpenAIFeedback.from_settings(settings, use_cache=not no_cache)


def _run_with_progress(job, total: int, console, show: bool):
    if not show:
        return job(None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task):
            return Text(f"{task.speed:.1f} answers/s" if task.speed else "", style="cyan")

    with Progress(TextColumn("[bold]Grading"), BarColumn(), MofNCompleteColumn(), Rate(),
                  TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=False) as progress:
        task = progress.add_task("grading", total=total)
        return job(lambda n: progress.advance(task, n))


def _finish_batch(outcome, opts, quiet: bool):
    """Render a batch job's outcome: the LLM dry run, or the summary table and messages; exit as it says."""
    from rich.markup import escape
    from rich.table import Table

    if outcome.dry_run is not None:
        d = outcome.dry_run
        typer.echo(f"--dry-run: {d.requests} LLM request(s) would be made ({d.cached} answer(s) cached, "
                   f"{d.empty} empty); model {d.model}")
        return
    summary, rep = outcome.summary, outcome.report
    con = _console()
    if outcome.llm_usage is not None and not quiet:
        con.print(outcome.llm_usage.summary())
    if not quiet:
        t = Table(title=f"{len(rep.candidates)} candidates · {rep.n_answers} answers · pass mark {opts.pass_mark:g}%")
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
    err = _console(stderr=True)
    for p in summary.skipped:
        err.print(f"[yellow]skipped[/] {escape(str(p))}", soft_wrap=True)
    for f in summary.failed:
        err.print(f"[red]not graded[/] {escape(f)}", soft_wrap=True)
    if outcome.under_fail_mark:
        err.print(f"overall {outcome.overall_percent:.1f}% is under --fail-under {opts.fail_under:g}%")
    if outcome.exit_code:
        raise typer.Exit(outcome.exit_code)


# ----------------------------------------------------------------------------- evaluate


def _signal_progress(label: str):
    """A context manager yielding a (done, total) callback: a rich bar on a terminal's stderr."""
    from contextlib import contextmanager

    @contextmanager
    def bar():
        err = _console(stderr=True)
        if not err.is_terminal:
            yield None
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("texts · ETA"), TimeRemainingColumn(), console=err, transient=True) as p:
            task = p.add_task(label, total=None)
            yield lambda done, total: p.update(task, completed=done, total=total)

    return bar()


def _fmt(v) -> str:
    return "—" if v is None else f"{v:.3f}"


@app.command()
def evaluate(
    file: Path = typer.Argument(..., metavar="FILE.jsonl", help="Human-graded answers (see shared/datasets/README.md)."),
    fmt: ListFormat = typer.Option(ListFormat.table, "--format", "-f", help="table or json."),
    cv: Optional[int] = typer.Option(None, "--cv", help="Also K-fold cross-validation, folds grouped by question."),
    calibration: Optional[Path] = typer.Option(None, "--calibration", help="Calibration JSON (default: the shipped one)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the first N answers."),
    model: Optional[Path] = typer.Option(None, "--model", help="A model from `grader train`: also its score alone and, with --cv, as one more signal."),
    predictions: Optional[Path] = typer.Option(None, "--predictions", metavar="OUT.jsonl", help="Also write each row's predicted and human score, one JSON line per row."),
):
    """Measure agreement with human graders.  Rows of a bank question without their own
    reference answer are scored exactly as `grader grade` scores them; the others against
    their own reference answer."""
    from grader.accuracy.job import EvaluateOptions, evaluate_file

    outcome = evaluate_file(EvaluateOptions(file=file, cv=cv, calibration=calibration, limit=limit, model=model,
                                            predictions=predictions), _settings(), _signal_progress)
    result, trained = outcome.evaluation, outcome.trained
    from rich.markup import escape

    for w in outcome.warnings:
        _console(stderr=True).print(f"[yellow]warning:[/] {escape(w)}", soft_wrap=True)
    if fmt == ListFormat.json:
        if trained is None:
            typer.echo(result.model_dump_json(indent=2))
        else:
            import json

            typer.echo(json.dumps({**result.model_dump(mode="json"), "trained_model": trained}, indent=2))
        return
    from rich.markup import escape
    from rich.table import Table

    con = _console()
    t = Table(title=f"{escape(file.name)}: {result.n} answers · {result.questions} questions · "
                    f"scale step {result.scale_step:g}")
    t.add_column("metric")
    t.add_column("zero-shot", justify="right")
    if result.cv:
        t.add_column(f"cv {result.cv_folds}-fold by question", justify="right")
    for m in ("pearson", "spearman", "qwk", "rmse", "mae"):
        t.add_row(m, _fmt(getattr(result.zero_shot, m)), *([_fmt(getattr(result.cv, m))] if result.cv else []))
    con.print(t)
    q = Table(title=f"per question ({'cross-validated' if result.cv else 'zero-shot'})")
    for col in ("question", "n", "max", "human mean", "predicted mean", "pearson", "mae"):
        q.add_column(col, justify="left" if col == "question" else "right")
    for pq in result.per_question:
        q.add_row(escape(pq.question_id), str(pq.n), f"{pq.max_score:g}", f"{pq.human_mean:.2f}",
                  f"{pq.predicted_mean:.2f}", _fmt(pq.pearson), f"{pq.mae:.2f}")
    con.print(q)
    con.print(f"calibration: {escape(result.calibration)} · model {escape(result.model)} · {result.seconds:.1f} s")
    if result.bank_rows:
        con.print(f"{result.bank_rows} row(s) of bank questions scored as `grader grade` scores them "
                  f"({escape(result.bank_mix or '')} mix)")
    if trained is not None:
        t = Table(title=f"trained model {escape(trained['model'])}")
        t.add_column("metric")
        t.add_column("model alone", justify="right")
        if "cv_with_signal" in trained:
            t.add_column(f"cv {cv}-fold, signals + model", justify="right")
        for m in ("pearson", "spearman", "qwk", "rmse", "mae"):
            t.add_row(m, _fmt(trained["alone"][m]),
                      *([_fmt(trained["cv_with_signal"][m])] if "cv_with_signal" in trained else []))
        con.print(t)
        if "cv_with_signal" not in trained:
            con.print("add --cv K to measure the model's score as one more signal (fitted on other questions)")


@app.command()
def calibrate(
    files: list[Path] = typer.Argument(..., metavar="FILE.jsonl...", help="Human-graded answers; several are pooled, each weighing the same."),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the calibration JSON."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the first N answers of each file."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
    model: Optional[Path] = typer.Option(None, "--model", help="A model from `grader train`: fit its score as one more signal."),
):
    """Fit how the signals combine into a score on human grades; save it as JSON."""
    from rich.markup import escape
    from rich.table import Table

    from grader.scoring.calibration import save_calibration
    from grader.embedding import make_embedder, make_second_embedder
    from grader.accuracy.fit import calibrate_files

    if out.exists() and not force:
        raise InputError(f"--out: {out} exists (use --force to overwrite)")
    s = _settings()
    embedder = make_embedder(s)
    scorer = None
    if model is not None:
        from grader.scoring.trained import TrainedModel

        scorer = TrainedModel.load(model, threads=s.thread_count())
    with _signal_progress("Embedding") as cb:
        cal = calibrate_files(files, embedder, limit=limit, progress=cb, scorer=scorer,
                              second=make_second_embedder(s))
    save_calibration(cal, out)
    con = _console()
    views = [("", cal.fits)]
    if cal.second:
        views.append((f"second view ({cal.second.model}, weight {cal.second.weight:g}), ", cal.second.fits))
    for view, fits in views:
        for i, fit in enumerate(fits):
            t = Table(title=f"{escape(view)}fit {i + 1}: intercept {fit.intercept:.3f}"
                      + (" (used when peers are missing)" if i else ""))
            t.add_column("signal")
            t.add_column("coefficient (per std)", justify="right")
            for name, c in zip(fit.features, fit.coef):
                t.add_row(escape(name), f"{c:+.4f}")
            con.print(t)
    rows = sum(f.rows for f in cal.fitted_on)
    con.print(f"Fitted on {rows} answers from {len(cal.fitted_on)} file(s); wrote {escape(str(out))}")


@rubric_app.command("draft")
def rubric_draft(
    question: Optional[str] = typer.Option(None, "--question", "-q", help="Draft from this bank question's model answer."),
    reference: Optional[str] = typer.Option(None, "--reference", "-r", help="Draft from this model answer text."),
    question_text: Optional[str] = typer.Option(None, "--question-text", help="With --reference: the question (its words are not concepts)."),
    qid: str = typer.Option("drafted", "--id", help="With --reference: the rubric's question_id."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the TOML here instead of printing it."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
    llm: bool = typer.Option(False, "--llm", help="Let the configured LLM propose the rubric (see README); the plain draft if it fails."),
    no_cache: bool = typer.Option(False, "--no-cache", help="With --llm: ask again even if the reply is cached."),
):
    """Draft a rubric (TOML) from a model answer: key concepts with weights and synonyms."""
    import tomllib

    from pydantic import ValidationError

    from grader.scoring.draft import draft_rubric, rubric_toml, slug
    from grader.models import Rubric

    if (question is None) == (reference is None):
        raise InputError("rubric draft: give exactly one of --question ID or --reference TEXT")
    if question is not None:
        q = _bank(require_rubrics=False).get(question)
        rid, ref, qtext = q.id, q.model_answer, q.question
    else:
        if not reference.strip():
            raise InputError("--reference: the model answer is empty")
        rid, ref, qtext = slug(qid), reference, question_text or ""
    if out is not None and out.exists() and not force:  # before a request is spent
        raise InputError(f"--out: {out} exists (use --force to overwrite)")
    if llm:
        from rich.markup import escape

        from grader.llm.drafting import draft_rubric_llm

        provider = _llm_provider(_settings(), no_cache)  # ConfigError when not set up
        err = _console(stderr=True)
        with err.status("Asking the LLM…"):
            drafted = draft_rubric_llm(provider, rid, ref, qtext)
        if drafted.warning:
            err.print(f"[yellow]warning:[/] --llm: {escape(drafted.warning)}; using the plain draft instead",
                      soft_wrap=True)
        else:
            for note in drafted.notes:
                err.print(f"note: --llm: {escape(note)}", soft_wrap=True)
        text = drafted.toml(qtext)
    else:
        text = rubric_toml(draft_rubric(rid, ref, qtext), qtext)
    try:
        Rubric.model_validate(tomllib.loads(text))
    except (tomllib.TOMLDecodeError, ValidationError) as exc:  # pragma: no cover - drafting bug
        raise InputError(f"rubric draft: the drafted rubric does not validate ({exc})") from None
    if out is None:
        typer.echo(text, nl=False)
        return
    if out.exists() and not force:
        raise InputError(f"--out: {out} exists (use --force to overwrite)")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    _console(stderr=True).print(f"Wrote {out}")


# ----------------------------------------------------------------------------- train


@app.command()
def train(
    files: list[Path] = typer.Argument(..., metavar="FILE.jsonl...", help="Human-graded answers (the evaluate format); several are pooled."),
    out: Path = typer.Option(Path("models/grader-ce"), "--out", "-o", help="Folder for the trained model (not committed: models/ is ignored)."),
    epochs: int = typer.Option(1, "--epochs", min=1, help="Passes over the training rows (early stopping on held-out questions)."),
    max_rows: Optional[int] = typer.Option(None, "--max-rows", min=1, help="Train on a seeded sample of at most N rows."),
    seed: int = typer.Option(13, "--seed", help="Seed for the split, the sample, the head and the order."),
    held_out_share: float = typer.Option(0.2, "--held-out-share", help="Share of rows held out, as whole questions."),
    max_length: int = typer.Option(256, "--max-length", min=16, max=512, help="Tokens per (reference, answer) pair."),
    batch_size: int = typer.Option(16, "--batch-size", min=1),
    lr: float = typer.Option(1e-4, "--lr", help="Learning rate of the encoder (the new head: 10x)."),
    threads: int = typer.Option(2, "--threads", min=1, help="torch threads (pinned: oversubscription is 10-50x slower)."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it holds a model."),
):
    """Fine-tune a cross-encoder (reference answer, answer) -> score on graded answers; save it to --out."""
    from rich.markup import escape

    from grader.scoring.trained import META_FILE
    from grader.accuracy.train import TrainSettings
    from grader.accuracy.train import train as run_training

    if (out / "config.json").exists() or (out / META_FILE).exists():
        if not force:
            raise InputError(f"--out: {out} already holds a model (use --force to overwrite)")
    for f in files:
        if not f.is_file():
            raise InputError(f"{f}: no such file")
    st = TrainSettings(epochs=epochs, max_rows=max_rows, seed=seed, held_out_share=held_out_share,
                       max_length=max_length, batch_size=batch_size, lr=lr, head_lr=lr * 10, threads=threads)
    err = _console(stderr=True)
    log = lambda msg: err.print(escape(msg), soft_wrap=True)  # noqa: E731
    if err.is_terminal:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        with Progress(TextColumn("[bold]Training"), BarColumn(), MofNCompleteColumn(), TextColumn("steps · loss {task.fields[loss]}"),
                      TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=err) as p:
            task = p.add_task("train", total=None, loss="—")
            res = run_training(files, out, st, log=p.console.print,
                               progress=lambda d, t, loss: p.update(task, completed=d, total=t, loss=f"{loss:.3f}"))
    else:
        res = run_training(files, out, st, log=log)
    m = res.meta
    err.print(f"trained on {m['train_rows']} rows · {len(m['train_questions'])} questions; held out "
              f"{m['held_out_rows']} rows · {len(m['held_out_questions'])} questions · {m['seconds']:.0f} s")
    err.print(f"Wrote {escape(str(out))} ({META_FILE} says what it was trained on)")


# ----------------------------------------------------------------------------- entry point


def main() -> None:
    """Console-script entry point: one-line errors, never a traceback."""
    try:
        app()
    except GraderError as exc:
        from rich.markup import escape

        _console(stderr=True).print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _console(stderr=True).print("interrupted")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the promise is no traceback, whatever broke
        if os.environ.get("GRADER_DEBUG"):
            raise
        from rich.markup import escape

        msg = str(exc).splitlines()[0] if str(exc) else ""
        _console(stderr=True).print(
            f"[red]error:[/] {escape(type(exc).__name__)}: {escape(msg)} (set GRADER_DEBUG=1 for details)",
            soft_wrap=True,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
