"""Reading candidates' answers from CSV, JSONL or JSON files, with problems by file:line:field."""

from __future__ import annotations

import codecs
import csv
import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from grader.errors import InputError
from grader.models import AnswerRow
from grader.text import clean

REQUIRED = ("candidate", "question_id", "answer")
# Text fields besides REQUIRED; `questions` (the ids a candidate was asked) is read by _assigned.
OPTIONAL = ("submission_id", "question", "reference_answer", "topic")
# Other delimiters a spreadsheet may save a "CSV" with (a comma locale's Excel writes ';').
OTHER_DELIMITERS = (";", "\t")
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}
# Any single field beyond this is refused rather than read into memory whole.
MAX_FIELD = 10 * 1024 * 1024
csv.field_size_limit(MAX_FIELD)


class RowProblem(BaseModel):
    file: str
    line: int
    field: str
    message: str
    fatal: bool = False  # the file as a whole cannot be read (encoding, header, not a list)

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field + ': ' if self.field else ''}{self.message}"


@dataclass
class Source:
    """An input file (standard input is spooled to a temporary file so it can be read twice)."""

    path: Path
    display: str
    fmt: str
    encoding: str
    _tmp: Path | None = None

    def close(self) -> None:
        if self._tmp:
            self._tmp.unlink(missing_ok=True)


def _sniff_encoding(path: Path, display: str) -> str:
    with open(path, "rb") as fh:
        head = fh.read(4)
    # UTF-32 first: its little-endian BOM starts with UTF-16's.
    if head.startswith(codecs.BOM_UTF32_LE) or head.startswith(codecs.BOM_UTF32_BE):
        return "utf-32"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    _refuse_nul(path, display)
    return "utf-8-sig"


def _refuse_nul(path: Path, display: str) -> None:
    """NUL bytes are valid UTF-8 but never text: UTF-16 without a BOM, or a binary file."""
    lines = 1
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            at = block.find(b"\x00")
            if at >= 0:
                lines += block.count(b"\n", 0, at)
                raise InputError(f"{display}:{lines}: contains NUL bytes (UTF-16 without a byte-order mark, "
                                 "or not a text file); save it as UTF-8")
            lines += block.count(b"\n")


def _decode_error_line(src: "Source") -> int:
    """The line of the first byte that is not UTF-8 (0 when it cannot be told)."""
    if src.encoding != "utf-8-sig":
        return 0
    with open(src.path, "rb") as fh:
        # A newline byte is never part of a multi-byte UTF-8 character, so lines decode alone.
        for line_no, raw in enumerate(fh, 1):
            try:
                raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
            except UnicodeDecodeError:
                return line_no
    return 0


def open_source(name: str, fmt: str | None = None) -> Source:
    """Resolve an input path (or '-') and its format (by extension, or --input-format)."""
    tmp = None
    if name == "-":
        fd, tmpname = tempfile.mkstemp(prefix="grader-stdin-")
        with open(fd, "wb") as out:
            shutil.copyfileobj(sys.stdin.buffer, out)
        path, display, tmp = Path(tmpname), "<stdin>", Path(tmpname)
        fmt = fmt or "jsonl"
    else:
        path, display = Path(name), name
        if not path.exists():
            raise InputError(f"{name}: file not found")
        if path.is_dir():
            raise InputError(f"{name}: is a folder, not a file")
        if fmt is None:
            fmt = FORMATS.get(path.suffix.lower())
            if fmt is None:
                raise InputError(f"{name}: unknown input format {path.suffix!r} (use .csv, .jsonl or .json)")
    try:
        if path.stat().st_size == 0:
            raise InputError(f"{display}: empty file")
        return Source(path, display, fmt, _sniff_encoding(path, display), tmp)
    except BaseException:
        if tmp:
            tmp.unlink(missing_ok=True)
        raise


def _text(value, line: int, field: str, src: Source) -> str | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise _Bad(RowProblem(file=src.display, line=line, field=field, message="must be text"))
    if "\x00" in value:
        raise _Bad(RowProblem(file=src.display, line=line, field=field, message="contains a NUL byte"))
    return value


def _shown(text: str, limit: int = 120) -> str:
    """Input text quoted in a one-line message: control characters escaped, cut short."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[: limit + 1])
    return text if len(text) <= limit else text[:limit] + "…"


class _Bad(Exception):
    def __init__(self, problem: RowProblem):
        self.problem = problem


def _assigned(value, line: int, src: Source) -> list[str] | None:
    """The `questions` field: the ids a candidate was asked, as a list or separated by commas/spaces."""
    if value is None:
        return None
    if isinstance(value, list):
        if not all(isinstance(v, str) for v in value):
            raise _Bad(RowProblem(file=src.display, line=line, field="questions", message="must be a list of question ids"))
        ids = [v.strip() for v in value]
    else:
        ids = (_text(value, line, "questions", src) or "").replace(",", " ").split()
    ids = list(dict.fromkeys(i for i in ids if i))
    return ids or None


def _row(obj: dict, line: int, src: Source) -> AnswerRow:
    vals = {}
    for f in REQUIRED + OPTIONAL:
        vals[f] = _text(obj.get(f), line, f, src)
    for f in ("candidate", "question_id"):
        if vals[f] is None:
            raise _Bad(RowProblem(file=src.display, line=line, field=f, message="missing"))
        vals[f] = " ".join(vals[f].split())
        if not clean(vals[f]):  # nothing visible: empty, or only zero-width and control characters
            raise _Bad(RowProblem(file=src.display, line=line, field=f, message="empty"))
    if vals["answer"] is None:
        raise _Bad(RowProblem(file=src.display, line=line, field="answer", message="missing"))
    vals["submission_id"] = vals["submission_id"] or None
    return AnswerRow(line=line, assigned=_assigned(obj.get("questions"), line, src), **vals)


def _header_fields(header: list[str]) -> list[str]:
    return [h.strip().lower() for h in header]


def _delimiter(src: Source) -> str:
    """',' unless the header only makes sense split on another delimiter (';' or tab)."""
    with open(src.path, encoding=src.encoding, newline="") as fh:
        first = fh.readline()
    for delim in (",", *OTHER_DELIMITERS):
        fields = _header_fields(next(csv.reader([first], delimiter=delim), []))
        if all(c in fields for c in REQUIRED):
            return delim
    return ","


def _iter_csv(src: Source) -> Iterator[AnswerRow | RowProblem]:
    with open(src.path, encoding=src.encoding, newline="") as fh:
        # strict: a quote that is never closed is an error, not the rest of the file read
        # into one answer.
        delim = _delimiter(src)
        reader = csv.reader(fh, strict=True, delimiter=delim)
        try:
            header = next(reader)
        except StopIteration:
            yield RowProblem(file=src.display, line=1, field="", message="empty file", fatal=True)
            return
        except csv.Error as exc:
            yield RowProblem(file=src.display, line=1, field="", message=f"unreadable CSV header ({exc})", fatal=True)
            return
        header = _header_fields(header)
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            other = next((d for d in OTHER_DELIMITERS if len(header) == 1 and d in header[0]), None)
            hint = (f"; it looks delimited by {other!r}, but even split on {other!r} it lacks "
                    f"{', '.join(repr(c) for c in REQUIRED if c not in _header_fields(header[0].split(other)))}"
                    if other else "")
            yield RowProblem(file=src.display, line=1, field=missing[0],
                             message=f"missing column (header has: {_shown(', '.join(header)) or 'nothing'}){hint}",
                             fatal=True)
            return
        twice = [c for c in REQUIRED + OPTIONAL if header.count(c) > 1]
        if twice:
            yield RowProblem(file=src.display, line=1, field=twice[0], message="column appears twice in the header",
                             fatal=True)
            return
        start = reader.line_num + 1
        while True:
            line = start
            try:
                rec = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                hint = "; a quoted field is never closed" if "end of data" in str(exc) else ""
                yield RowProblem(file=src.display, line=line, field="",
                                 message=f"unreadable CSV ({exc}{hint})", fatal=True)
                return
            start = reader.line_num + 1
            if not rec or all(not c.strip() for c in rec):
                continue
            if len(rec) != len(header):
                yield RowProblem(file=src.display, line=line, field="",
                                 message=f"{len(rec)} fields, header has {len(header)}")
                continue
            try:
                yield _row(dict(zip(header, rec)), line, src)
            except _Bad as bad:
                yield bad.problem


def _iter_jsonl(src: Source) -> Iterator[AnswerRow | RowProblem]:
    with open(src.path, encoding=src.encoding, newline="") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                yield RowProblem(file=src.display, line=line_no, field="", message=f"invalid JSON ({exc.msg})")
                continue
            yield _object_row(obj, line_no, src, "expected a JSON object")


def _object_row(obj, line: int, src: Source, not_object: str) -> AnswerRow | RowProblem:
    """One decoded JSON value as a row, or the problem with it."""
    if not isinstance(obj, dict):
        return RowProblem(file=src.display, line=line, field="", message=not_object)
    try:
        return _row(obj, line, src)
    except _Bad as bad:
        return bad.problem


def _iter_json(src: Source) -> Iterator[AnswerRow | RowProblem]:
    with open(src.path, encoding=src.encoding) as fh:
        text = fh.read()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        yield RowProblem(file=src.display, line=exc.lineno, field="", message=f"invalid JSON ({exc.msg})", fatal=True)
        return
    if isinstance(data, dict) and isinstance(data.get("answers"), list):
        data = data["answers"]
    if not isinstance(data, list):
        yield RowProblem(file=src.display, line=1, field="", message="expected a JSON list of answers", fatal=True)
        return
    # A JSON list has no line per row; the row's 1-based position stands in for it.
    for i, obj in enumerate(data, 1):
        yield _object_row(obj, i, src, "expected a JSON object (row number)")


def iter_rows(src: Source) -> Iterator[AnswerRow | RowProblem]:
    """Rows of the source in order, each an AnswerRow or the problem that stopped it."""
    reader = {"csv": _iter_csv, "jsonl": _iter_jsonl, "json": _iter_json}[src.fmt]
    try:
        yield from reader(src)
    except UnicodeDecodeError:
        yield RowProblem(file=src.display, line=_decode_error_line(src), field="",
                         message="not UTF-8 text (nor UTF-16 with a BOM); save it as UTF-8", fatal=True)
    except csv.Error as exc:
        yield RowProblem(file=src.display, line=0, field="", message=f"unreadable CSV ({exc})", fatal=True)
