"""`grader review` as one function: load the run, open its decisions, then export or serve."""

from __future__ import annotations

import getpass
import ipaddress
import secrets
import socket
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, Field

from grader.errors import InputError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


class ReviewOptions(BaseModel):
    """What `grader review` was asked to do."""

    run: Path = Field(description="A batch's results file, or the folder its reports were written to.")
    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535, description="0: a free port.")
    open_browser: bool = False
    reviewer: str | None = Field(default=None, max_length=100, description="Default: the OS user.")
    pass_mark: float = Field(default=60.0, ge=0, le=100)
    export: Path | None = Field(default=None, description="Write the report with the human scores (HTML) and exit.")
    export_graded: Path | None = Field(default=None, description="Write the human grades as a graded file and exit.")


class ExportOutcome(BaseModel):
    written: list[Path] = Field(default_factory=list)
    graded_rows: int = 0
    left_out: int = 0


def reviewer_name(given: str | None) -> str:
    """--reviewer, else the OS user."""
    if given and given.strip():
        return given.strip()
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "reviewer"


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise InputError(f"--host/--port: cannot listen on {host}:{port} ({exc.strerror})") from None
    return sock


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_review(opts: ReviewOptions, settings, *, echo: Callable[[str], None], warn: Callable[[str], None]) -> ExportOutcome | None:
    """Export (--export, --export-graded) and return what was written, or serve the app until
    Ctrl-C, its URL with the access token the first line given to `echo`."""
    from grader.bank import load_bank
    from grader.review.run import load_run
    from grader.review.state import ReviewState
    from grader.batch.decisions import DecisionStore, store_path

    run = load_run(opts.run)
    bank = load_bank(settings.questions, settings.rubrics_dir)
    exporting = opts.export is not None or opts.export_graded is not None
    if exporting and not store_path(run.results_path).exists():
        from grader.reports.human import HumanReview

        return export_human(run, HumanReview(), set(bank.questions), opts)  # nobody has reviewed it: no database made
    store = DecisionStore(store_path(run.results_path))
    state = ReviewState(run, store, pass_mark=opts.pass_mark, reviewer=reviewer_name(opts.reviewer))
    try:
        if exporting:
            return export_human(run, state.human_review(), set(bank.questions), opts)
        _serve(state, settings, set(bank.questions), opts, echo, warn)
        return None
    finally:
        store.close()


def export_human(run, human, bank_questions: set[str], opts: ReviewOptions) -> ExportOutcome:
    """Write the report and/or the graded file of a reviewed run."""
    from grader.fsutil import atomic_write_text
    from grader.review.export import graded_jsonl, graded_rows, report_html

    out = ExportOutcome()
    if opts.export is not None:
        if opts.export.suffix.lower() not in (".html", ".htm"):
            raise InputError(f"--export: {opts.export}: give an .html file")
        atomic_write_text(opts.export, report_html(run, human, pass_mark=opts.pass_mark))
        out.written.append(opts.export)
    if opts.export_graded is not None:
        g = graded_rows(run, human, bank_questions)
        atomic_write_text(opts.export_graded, graded_jsonl(g))
        out.written.append(opts.export_graded)
        out.graded_rows, out.left_out = len(g.rows), g.left_out
    return out


def _serve(state, settings, bank_questions: set[str], opts: ReviewOptions, echo, warn) -> None:
    import threading
    import webbrowser

    import uvicorn

    from grader.review.app import create_app
    from grader.review.groups import GroupCache

    def make_grader():
        from grader.scoring import grader_from_settings

        return grader_from_settings(settings.model_copy(update={"graded": None}))

    sock = _bind(opts.host, opts.port)
    port = sock.getsockname()[1]
    loopback = is_loopback(opts.host)
    if not loopback:
        warn(f"warning: listening on {opts.host}, reachable from other machines; anyone with the URL's token can "
             "read every answer and record decisions")
    shown = "127.0.0.1" if opts.host in ("127.0.0.1", "localhost") else (f"[{opts.host}]" if ":" in opts.host else opts.host)
    hosts = {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"} if loopback else None
    token = secrets.token_urlsafe(24)
    groups = GroupCache(state.run, make_grader)
    app = create_app(state, groups, token=token, allowed_hosts=hosts, bank_questions=bank_questions)
    threading.Thread(target=groups.prefetch, name="review-groups", daemon=True).start()
    url = f"http://{shown}:{port}/?token={token}"
    echo(url)
    # No access log: the first request's URL carries the token.
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                           timeout_graceful_shutdown=5))
    if opts.open_browser:
        threading.Timer(0.5, webbrowser.open, args=(url,)).start()
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # uvicorn has shut down; it re-raises the Ctrl-C it caught
    finally:
        sock.close()
