"""`grader grade`: one answer to a bank question, scored as every command scores it."""

import sys
from pathlib import Path
from typing import Optional

import typer

from grader.cli import options
from grader.cli.app import app
from grader.cli.context import GradeFormat, bank, console, settings
from grader.errors import InputError


def read_answer(answer: Optional[str]) -> str:
    """The answer from --answer, else standard input (UTF-8, or UTF-16 with a byte-order mark)."""
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
    question: str = typer.Option(..., "--question", "-q", metavar="ID", help="Question id from the bank."),
    answer: Optional[str] = typer.Option(None, "--answer", "-a", metavar="TEXT", help="The answer (default: standard input)."),
    fmt: GradeFormat = typer.Option(GradeFormat.text, "--format", "-f", help="text or json."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", metavar="FILE", help="Also write the report (.json or .md)."),
    llm: options.Llm = False,
    llm_weight: options.LlmWeight = None,
    no_cache: options.NoCache = False,
    repeat: options.Repeat = 1,
    calibration: options.Calibration = None,
    model: options.Model = None,
    graded: options.Graded = None,
):
    """Grade one answer to a bank question."""
    from grader.scoring import grader_from_settings

    b = bank(only=question)
    q = b.get(question)
    text = read_answer(answer)
    if out is not None and out.suffix.lower() not in (".json", ".md", ".markdown"):
        raise InputError(f"--out: {out}: unknown report format {out.suffix!r} (use .json or .md)")
    if repeat != 1 and not llm:
        raise InputError("--repeat goes with --llm")
    reviewer = options.llm_reviewer(llm_weight, no_cache, repeat) if llm else None
    result = grader_from_settings(settings(), calibration, model, graded).grade(q, b.rubrics[q.id], text)
    if reviewer is not None:
        with console(stderr=True).status("Asking the LLM…"):
            result = reviewer(q, b.rubrics[q.id], text, result)
    if out is not None:
        from grader.reports.single import write_result

        write_result(out, result, text)
    if fmt == GradeFormat.json:
        typer.echo(result.model_dump_json(indent=2))
    else:
        from grader.render import result_renderable

        console().print(result_renderable(result))
        rep = (result.llm or {}).get("repeat")
        if rep:
            scores = ", ".join(f"{x:g}" for x in rep["scores"])
            typer.echo(f"LLM asked {rep['n']} times (seeds {rep['seeds'][0]}..{rep['seeds'][-1]}; {rep['valid']} valid): "
                       f"scores {scores}; spread {rep['spread']:.0%} of full marks; same band in all "
                       f"{rep['n']}: {'yes' if rep['same_band'] else 'no'}; the score uses the median review")
