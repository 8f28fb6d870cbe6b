"""The reviewers' decisions: an append-only audit log in SQLite beside the results file.

Never the results file itself.  WAL mode with synchronous=FULL, so a killed server leaves every
committed decision and no half of one; triggers refuse UPDATE and DELETE.  The current state of
an answer is its latest decision; a decision made by someone who had not seen the one before it
(`seen` older than the latest) records which one it overrode (`conflict_with`), so both stay in
the log and the page can show the conflict.

This module imports only the standard library and plain models (grader.reports.human): `grader
batch --resume` reads the human grades through `human_review` without loading the app.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from grader.errors import InputError
from grader.reports.human import HumanGrade, HumanReview

AnswerKind = Literal["score", "accept", "llm-accept", "llm-reject", "group"]
Kind = Literal["score", "accept", "llm-accept", "llm-reject", "group", "verdict"]
Verdict = Literal["advance", "reject", "hold"]
ANSWER_KINDS: tuple[str, ...] = ("score", "accept", "llm-accept", "llm-reject", "group")
# A candidate's verdict is a decision on the pair (candidate, "").
VERDICT_QID = ""

SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at TEXT NOT NULL,
  reviewer TEXT NOT NULL,
  kind TEXT NOT NULL,
  candidate TEXT NOT NULL,
  question_id TEXT NOT NULL,
  old_score REAL,
  new_score REAL,
  verdict TEXT,
  note TEXT NOT NULL DEFAULT '',
  seen INTEGER NOT NULL DEFAULT 0,
  conflict_with INTEGER
);
CREATE INDEX IF NOT EXISTS decisions_target ON decisions (candidate, question_id, id);
CREATE TRIGGER IF NOT EXISTS decisions_no_update BEFORE UPDATE ON decisions
  BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;
CREATE TRIGGER IF NOT EXISTS decisions_no_delete BEFORE DELETE ON decisions
  BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;
"""
COLUMNS = ("id", "at", "reviewer", "kind", "candidate", "question_id", "old_score", "new_score", "verdict",
           "note", "seen", "conflict_with")
MAX_NOTE = 2000


class Decision(BaseModel):
    """One audit record: who decided what about one answer (or one candidate), when."""

    id: int
    at: str
    reviewer: str
    kind: Kind
    candidate: str
    question_id: str = Field(description="Empty for a candidate's verdict.")
    old_score: float | None = None
    new_score: float | None = None
    verdict: Verdict | None = None
    note: str = ""
    seen: int = Field(default=0, description="The latest decision on this target the reviewer had seen (0: none).")
    conflict_with: int | None = Field(default=None, description="The decision this one overrode unseen.")


class NewDecision(BaseModel):
    """A decision to record (the store gives it its id, time and conflict)."""

    kind: Kind
    candidate: str
    question_id: str = VERDICT_QID
    old_score: float | None = None
    new_score: float | None = None
    verdict: Verdict | None = None
    note: str = Field(default="", max_length=MAX_NOTE)
    seen: int = 0


def store_path(results: Path) -> Path:
    """Where a run's decisions live: `<results>.review.sqlite` beside the results file."""
    return results.with_name(results.name + ".review.sqlite")


def answer_key(candidate: str, question_id: str) -> str:
    """The journal's key of one answer."""
    return f"{candidate}\x1f{question_id}"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class DecisionStore:
    """The decisions of one run, open for reading and appending; safe across threads (one lock)
    and processes (SQLite's own locking: two reviewers' servers may share one file)."""

    def __init__(self, path: Path, *, create: bool = True):
        self.path = Path(path)
        if not create and not self.path.exists():
            raise InputError(f"{self.path}: no decisions recorded yet")
        try:
            self._db = sqlite3.connect(self.path, timeout=10, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=10000")
            self._db.executescript(SCHEMA)
        except sqlite3.OperationalError as exc:
            raise InputError(f"{self.path}: cannot open the review database ({exc})") from None
        except sqlite3.DatabaseError as exc:
            raise InputError(f"{self.path}: not a grader review database ({exc})") from None
        self._lock = threading.Lock()
        self.last_id = 0
        self.latest: dict[tuple[str, str], Decision] = {}
        self.history: dict[tuple[str, str], list[Decision]] = {}
        self.refresh()

    def close(self) -> None:
        self._db.close()

    def refresh(self) -> list[Decision]:
        """Read the decisions recorded since the last look (by this process or another)."""
        with self._lock:
            rows = self._db.execute(f"SELECT {', '.join(COLUMNS)} FROM decisions WHERE id > ? ORDER BY id",
                                    (self.last_id,)).fetchall()
            new = [Decision(**dict(zip(COLUMNS, r))) for r in rows]
            for d in new:
                t = (d.candidate, d.question_id)
                self.latest[t] = d
                self.history.setdefault(t, []).append(d)
                self.last_id = d.id
            return new

    def record(self, items: list[NewDecision], reviewer: str) -> list[Decision]:
        """Append decisions in one transaction; each one made against a stale state (its `seen`
        older than the target's latest decision) names the decision it overrode."""
        at = _now()
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            ids: list[int] = []
            try:
                for it in items:
                    row = cur.execute("SELECT max(id) FROM decisions WHERE candidate = ? AND question_id = ?",
                                      (it.candidate, it.question_id)).fetchone()
                    latest = row[0] or 0
                    conflict = latest if latest > it.seen else None
                    cur.execute("INSERT INTO decisions (at, reviewer, kind, candidate, question_id, old_score, "
                                "new_score, verdict, note, seen, conflict_with) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                                (at, reviewer, it.kind, it.candidate, it.question_id, it.old_score, it.new_score,
                                 it.verdict, it.note, it.seen, conflict))
                    ids.append(cur.lastrowid)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        self.refresh()
        out = []
        for it, i in zip(items, ids):
            out.append(next(d for d in reversed(self.history[(it.candidate, it.question_id)]) if d.id == i))
        return out

    def human_review(self) -> HumanReview:
        """The latest decision of every answer and candidate, as the reports show them."""
        self.refresh()
        out = HumanReview()
        for (cand, qid), d in self.latest.items():
            if qid == VERDICT_QID:
                if d.verdict is not None:
                    out.verdicts[cand] = d.verdict
            elif d.new_score is not None:
                out.grades[answer_key(cand, qid)] = HumanGrade(
                    score=d.new_score, reviewer=d.reviewer, at=d.at, kind=d.kind, note=d.note, conflict=d.conflict_with is not None)
        return out


def human_review(results: Path) -> HumanReview | None:
    """The human grades recorded for a results file, or None when nobody has reviewed it."""
    path = store_path(results)
    if not path.exists():
        return None
    store = DecisionStore(path, create=False)
    try:
        return store.human_review()
    finally:
        store.close()
