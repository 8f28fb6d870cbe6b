"""Reports of one graded answer or one practice session (JSON and Markdown)."""

from __future__ import annotations

import json
from pathlib import Path


from grader.fsutil import atomic_write_text
from grader.models import GradeResult, Session
from grader.reports.markdown import result_markdown, session_markdown


def write_result(path: Path, result: GradeResult, answer: str | None = None) -> None:
    """Write one result as JSON (.json) or Markdown (.md/.markdown), atomically."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        atomic_write_text(path, result.model_dump_json(indent=2) + "\n")
    elif suffix in (".md", ".markdown"):
        atomic_write_text(path, result_markdown(result, answer))
    else:
        from grader.errors import InputError

        raise InputError(f"{path}: unknown report format {suffix!r} (use .json or .md)")


def session_paths(folder: Path, session: Session) -> tuple[Path, Path]:
    """Free JSON and Markdown paths for a new session's reports (never an older session's)."""
    stem = "session-" + session.started.replace(":", "").replace("-", "")
    n, name = 1, stem
    while (folder / f"{name}.json").exists() or (folder / f"{name}.md").exists():
        n += 1
        name = f"{stem}-{n}"
    return folder / f"{name}.json", folder / f"{name}.md"


def write_session(paths: tuple[Path, Path], session: Session, model_answers: dict[str, str]) -> None:
    """Write a session's JSON and Markdown reports to the given paths, atomically."""
    jp, mp = paths
    atomic_write_text(jp, json.dumps(session.model_dump(), indent=2, ensure_ascii=False) + "\n")
    atomic_write_text(mp, session_markdown(session, model_answers))
