"""`grader rubric validate|schema|draft`: check, describe and draft rubrics."""

from pathlib import Path
from typing import Optional

import typer

from grader.cli.app import rubric_app
from grader.cli.context import bank, console, settings
from grader.errors import InputError


@rubric_app.command("validate", short_help="Check every rubric against the bank.")
def rubric_validate(
    rubrics_dir: Optional[Path] = typer.Option(None, "--rubrics", metavar="DIR", help="Rubric folder (default: GRADER_RUBRICS_DIR)."),
    questions: Optional[Path] = typer.Option(None, "--questions", metavar="FILE", help="Question bank file (default: GRADER_QUESTIONS)."),
):
    """Check every rubric against the bank; each problem with its file and field."""
    from grader.bank import validate_rubrics

    s = settings()
    problems = validate_rubrics(questions or s.questions, rubrics_dir or s.rubrics_dir)
    con = console()
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


@rubric_app.command("draft", short_help="Draft a rubric (TOML) from a model answer.")
def rubric_draft(
    question: Optional[str] = typer.Option(None, "--question", "-q", metavar="ID", help="Draft from this bank question's model answer."),
    reference: Optional[str] = typer.Option(None, "--reference", "-r", metavar="TEXT", help="Draft from this model answer text."),
    question_text: Optional[str] = typer.Option(None, "--question-text", metavar="TEXT", help="With --reference: the question (its words are not concepts)."),
    qid: str = typer.Option("drafted", "--id", metavar="ID", help="With --reference: the rubric's question_id."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", metavar="FILE", help="Write the TOML here instead of printing it."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
    llm: bool = typer.Option(False, "--llm", help="Let an LLM propose the rubric (needs GRADER_LLM_MODEL, and OPENAI_API_KEY or OPENAI_BASE_URL for a local server); the plain draft if it fails."),
    no_cache: bool = typer.Option(False, "--no-cache", help="With --llm: ask again even if the reply is cached."),
):
    """Draft a rubric (TOML) from a model answer: key concepts with weights and synonyms."""
    import tomllib

    from pydantic import ValidationError

    from grader.models import Rubric
    from grader.scoring.draft import draft_rubric, rubric_toml, slug

    if (question is None) == (reference is None):
        raise InputError("rubric draft: give exactly one of --question ID or --reference TEXT")
    if question is not None:
        q = bank(require_rubrics=False).get(question)
        rid, ref, qtext = q.id, q.model_answer, q.question
    else:
        if not reference.strip():
            raise InputError("--reference: the model answer is empty")
        rid, ref, qtext = slug(qid), reference, question_text or ""
    if out is not None and out.exists() and not force:  # before a request is spent
        raise InputError(f"--out: {out} exists (use --force to overwrite)")
    if llm:
        from rich.markup import escape

        from grader.llm import OpenAIFeedback
        from grader.llm.drafting import draft_rubric_llm

        provider = OpenAIFeedback.from_settings(settings(), use_cache=not no_cache)  # ConfigError when not set up
        err = console(stderr=True)
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
    console(stderr=True).print(f"Wrote {out}")
