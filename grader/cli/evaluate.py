"""`grader evaluate` and `grader calibrate`: agreement with human graders, and fitting on them."""

from pathlib import Path
from typing import Optional

import typer

from grader.cli import options
from grader.cli.app import app
from grader.cli.context import ListFormat, console, fmt, settings
from grader.cli.progress import counted

METRICS = ("pearson", "spearman", "qwk", "rmse", "mae")


@app.command()
def evaluate(
    file: Path = typer.Argument(..., metavar="FILE.jsonl", help="Human-graded answers, one JSON object per line: answer, score, max_score, and question_id of a bank question or question and reference_answer."),
    format_: ListFormat = typer.Option(ListFormat.table, "--format", "-f", help="table or json."),
    cv: Optional[int] = typer.Option(None, "--cv", help="Also K-fold cross-validation, folds grouped by question."),
    calibration: Optional[Path] = typer.Option(None, "--calibration", help="Calibration JSON (default: the shipped one)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the first N answers."),
    model: Optional[Path] = typer.Option(None, "--model", help="A model from `grader train`: also its score alone and, with --cv, as one more signal."),
    predictions: Optional[Path] = typer.Option(None, "--predictions", metavar="OUT.jsonl", help="Also write each row's predicted and human score, one JSON line per row."),
    graded: Optional[Path] = typer.Option(None, "--graded", metavar="POOL.jsonl", help="Learn from these graded answers to the same questions and score the file's (answers also in the file are dropped)."),
    per_question: Optional[int] = typer.Option(None, "--graded-per-question", metavar="K", help="Learn from K random graded answers of each question of the file and score the rest (0: zero-shot)."),
    seed: int = typer.Option(0, "--seed", metavar="N", help="First random seed of --graded-per-question."),
    repeats: int = typer.Option(5, "--repeats", metavar="N", help="Seeds --graded-per-question averages over."),
    llm: bool = typer.Option(False, "--llm", help="Also review every answer with the configured LLM and show the deterministic, LLM and blended scores' agreement side by side, with the LLM's usage."),
    llm_weight: options.LlmWeight = None,
    no_cache: options.NoCache = False,
    dry_run: bool = typer.Option(False, "--dry-run", help="With --llm: say how many requests it would make, and make none."),
    repeat: options.Repeat = 1,
):
    """Measure agreement with human graders.  Rows of a bank question without their own
    reference answer are scored exactly as `grader grade` scores them; the others against
    their own reference answer."""
    from rich.markup import escape
    from rich.table import Table

    from grader.accuracy.job import EvaluateOptions, evaluate_file, evaluate_learning

    if graded is not None or per_question is not None:
        if llm or dry_run or repeat != 1:
            from grader.errors import InputError

            raise InputError("--llm, --dry-run and --repeat measure the score `grade` ships: drop --graded and "
                             "--graded-per-question")
        learning = evaluate_learning(EvaluateOptions(file=file, cv=cv, calibration=calibration, limit=limit,
                                                     model=model, predictions=predictions, graded=graded,
                                                     graded_per_question=per_question, seed=seed, repeats=repeats),
                                     settings(), counted)
        for w in learning.warnings:
            console(stderr=True).print(f"[yellow]warning:[/] {escape(w)}", soft_wrap=True)
        _show_learning(learning.figure, format_)
        return
    outcome = evaluate_file(EvaluateOptions(file=file, cv=cv, calibration=calibration, limit=limit, model=model,
                                            predictions=predictions, llm=llm, llm_weight=llm_weight,
                                            no_cache=no_cache, dry_run=dry_run, repeat=repeat),
                            settings(), counted)
    result, trained = outcome.evaluation, outcome.trained
    for w in outcome.warnings:
        console(stderr=True).print(f"[yellow]warning:[/] {escape(w)}", soft_wrap=True)
    if outcome.dry_run_requests is not None:
        typer.echo(f"dry run: {result.n} answers; {outcome.dry_run_requests} LLM request(s) would be made "
                   f"(cached replies and empty answers need none; repairs and retries not counted)")
        return
    if outcome.llm is not None:
        _show_llm(outcome.llm, format_)
        return
    if format_ == ListFormat.json:
        if trained is None:
            typer.echo(result.model_dump_json(indent=2))
        else:
            import json

            typer.echo(json.dumps({**result.model_dump(mode="json"), "trained_model": trained}, indent=2))
        return
    con = console()
    t = Table(title=f"{escape(file.name)}: {result.n} answers · {result.questions} questions · "
                    f"scale step {result.scale_step:g}")
    t.add_column("metric")
    t.add_column("zero-shot", justify="right")
    if result.cv:
        t.add_column(f"cv {result.cv_folds}-fold by question", justify="right")
    for m in METRICS:
        t.add_row(m, fmt(getattr(result.zero_shot, m)), *([fmt(getattr(result.cv, m))] if result.cv else []))
    con.print(t)
    q = Table(title=f"per question ({'cross-validated' if result.cv else 'zero-shot'})")
    for col in ("question", "n", "max", "human mean", "predicted mean", "pearson", "mae"):
        q.add_column(col, justify="left" if col == "question" else "right")
    for pq in result.per_question:
        q.add_row(escape(pq.question_id), str(pq.n), f"{pq.max_score:g}", f"{pq.human_mean:.2f}",
                  f"{pq.predicted_mean:.2f}", fmt(pq.pearson), f"{pq.mae:.2f}")
    con.print(q)
    con.print(f"calibration: {escape(result.calibration)} · model {escape(result.model)} · {result.seconds:.1f} s")
    if result.bank_rows:
        con.print(f"{result.bank_rows} row(s) of bank questions scored as `grader grade` scores them "
                  f"({escape(result.bank_mix or '')} mix)")
    if trained is not None:
        t = Table(title=f"trained model {escape(trained['model'])}")
        t.add_column("metric")
        t.add_column("model alone", justify="right")
        with_signal = "cv_with_signal" in trained
        if with_signal:
            t.add_column(f"cv {cv}-fold, signals + model", justify="right")
        for m in METRICS:
            t.add_row(m, fmt(trained["alone"][m]), *([fmt(trained["cv_with_signal"][m])] if with_signal else []))
        con.print(t)
        if not with_signal:
            con.print("add --cv K to measure the model's score as one more signal (fitted on other questions)")


def _show_llm(f, format_: ListFormat) -> None:
    """Deterministic, LLM and blended agreement side by side, then usage and stability."""
    from rich.markup import escape
    from rich.table import Table

    if format_ == ListFormat.json:
        typer.echo(f.model_dump_json(indent=2))
        return
    cols = [("deterministic", f.deterministic), ("LLM fraction", f.llm),
            ("deterministic, same rows", f.deterministic_same_rows), ("blended", f.blended)]
    t = Table(title=f"{escape(Path(f.file).name)}: {f.n} answers · LLM {escape(f.model)} · {f.mode} mode")
    t.add_column("metric")
    for name, m in cols:
        t.add_column(name, justify="right")
    for m in ("n", *METRICS):
        t.add_row(m, *[("–" if x is None else (str(x.n) if m == "n" else fmt(getattr(x, m)))) for _, x in cols])
    st = f.stability
    if st is not None:
        t.add_row(f"pass^{st.repeat} (same band)", "", "", "", fmt(st.pass_n))
        t.add_row("spread mean / max", "", fmt(st.llm_spread_mean), "",
                  f"{fmt(st.spread_mean)} / {fmt(st.spread_max)}")
    con = console()
    con.print(t)
    u = f.usage
    con.print(f"LLM: {u.requests} requests ({f.requests_per_answer:g} per answer), {u.prompt_tokens} prompt + "
              f"{u.completion_tokens} completion tokens, {u.cached} from cache; {u.repaired} repaired, "
              f"{u.invalid} invalid after a repair, {u.errors} failed in all (their rows keep the "
              f"deterministic score and are left out of the LLM column) · {f.seconds:.1f} s")
    con.print(f"rubrics: {f.bank_rubric_rows} bank, {f.reference_rubric_rows} made from the reference answer")
    for j in f.judges:
        con.print(f"judge {escape(j['model'])}: {j['requests']} requests, {j['prompt_tokens']} prompt + "
                  f"{j['completion_tokens']} completion tokens, {j['cached']} from cache, {j['errors']} failed")
    if f.judges:
        con.print(f"the judges disagreed on {f.panel_disagreements} of {f.n} answers (flagged for human review)")


def _show_learning(f, format_: ListFormat) -> None:
    """The figure learned from graded answers beside zero-shot on the same answers."""
    from rich.markup import escape
    from rich.table import Table

    if format_ == ListFormat.json:
        typer.echo(f.model_dump_json(indent=2))
        return
    how = (f"{f.k} graded answers per question, mean of {f.repeats} seeds from {f.seed}" if f.protocol == "per-question"
           else f"learning from {f.pool} graded answers")
    t = Table(title=f"{escape(Path(f.file).name)}: {f.n} answers scored · {how}")
    t.add_column("metric")
    t.add_column("learned", justify="right")
    t.add_column("zero-shot, same answers", justify="right")
    for m in ("pearson", "qwk", "rmse", "mae"):
        t.add_row(m, fmt(getattr(f, m)), fmt(getattr(f.zero_shot, m)))
    con = console()
    con.print(t)
    b = f.blend
    con.print(f"blend: offset {b.offset:g} · neighbours {b.neighbours:g} · residuals {b.residuals:g} "
              f"({'fitted on ' + str(b.fitted_on) + ' graded answers' if b.fitted_on else 'the prior'})")


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

    from grader.accuracy.job import CalibrateOptions, calibrate_to_file

    cal = calibrate_to_file(CalibrateOptions(files=files, out=out, limit=limit, force=force, model=model),
                            settings(), counted)
    con = console()
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
