"""Writing a batch's outputs, each format chosen by the file's extension."""

from __future__ import annotations

import glob
from collections.abc import Callable, Iterator
from pathlib import Path

from grader.models import BatchRecord
from grader.errors import InputError
from grader.fsutil import atomic_write_text
from grader.reports.aggregate import BatchReport

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".md": "md",
           ".markdown": "md", ".html": "html", ".htm": "html"}


def output_format(path: Path) -> str:
    """The format of an output path, or a one-line error naming it."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"--out: {path}: unknown format {path.suffix!r} "
                         "(use .jsonl, .json, .csv, .md or .html)")
    return fmt


def _remove_stale_temps(path: Path) -> None:
    """Temporary files a killed run left beside this output (`.NAME.*.tmp`, see fsutil)."""
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        tmp.unlink(missing_ok=True)


def write_outputs(outs: list[Path], records: Callable[[], Iterator[BatchRecord]],
                  report: Callable[[], BatchReport], *, by: str = "answer") -> list[Path]:
    """Write every output; records and report are built on demand (each at most once for the report)."""
    from grader.reports import html, markdown, tabular

    built: list[BatchReport] = []

    def rep() -> BatchReport:
        if not built:
            built.append(report())
        return built[0]

    for path in outs:
        fmt = output_format(path)
        _remove_stale_temps(path)
        if fmt == "jsonl":
            tabular.write_jsonl(path, records())
        elif fmt == "json":
            tabular.write_json(path, records())
        elif fmt == "csv":
            if by == "candidate":
                tabular.write_csv_candidates(path, rep())
            else:
                tabular.write_csv_answers(path, records())
        elif fmt == "md":
            atomic_write_text(path, markdown.batch_markdown(rep()))
        elif fmt == "html":
            html.write_html(path, rep())
    return outs
