"""The review app: routes and rendering only (FastAPI, Jinja2 with auto-escaping).

Every request must carry the access token (cookie, X-Review-Token header or ?token=), compared
in constant time; the token in a URL is swapped for an HttpOnly SameSite=Strict cookie and a
redirect, so it leaves the address bar.  Writes also need the page's CSRF token and a same-origin
Origin; the Host header must be one this server answers to (no DNS rebinding).  No request path
reaches the file system: pages are numbered, static files are read into memory at start.
"""

from __future__ import annotations

import secrets
from importlib.resources import files
from typing import Literal
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from pydantic import BaseModel, Field, ValidationError

from grader.errors import InputError
from grader.review.groups import GroupCache
from grader.review.state import PAGE, RankingQuery, ReviewState, filter_ranking
from grader.batch.decisions import MAX_NOTE

COOKIE = "grader_review"
STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


class AnswerBody(BaseModel):
    kind: Literal["score", "accept", "llm-accept", "llm-reject"]
    score: float | None = None
    note: str = Field(default="", max_length=MAX_NOTE)
    seen: int = Field(default=0, ge=0)


class GroupBody(BaseModel):
    question: int = Field(ge=0)
    members: list[tuple[int, int]] = Field(min_length=1, max_length=100_000, description="(answer, seen) pairs.")
    score: float
    note: str = Field(default="", max_length=MAX_NOTE)


class VerdictBody(BaseModel):
    verdict: Literal["advance", "reject", "hold"]
    note: str = Field(default="", max_length=MAX_NOTE)
    seen: int = Field(default=0, ge=0)


def _templates():
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(str(files("grader.review").joinpath("templates"))),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["g"] = lambda v: "" if v is None else f"{v:g}"
    return env


def _static() -> dict[str, tuple[bytes, str]]:
    """The app's static files, read once; a request names one of these keys or gets 404."""
    out = {}
    for f in files("grader.review").joinpath("static").iterdir():
        ext = "." + f.name.rsplit(".", 1)[-1]
        if ext in STATIC_TYPES:
            out[f.name] = (f.read_bytes(), STATIC_TYPES[ext])
    return out


def create_app(state: ReviewState, groups: GroupCache, *, token: str, allowed_hosts: set[str] | None,
               bank_questions: set[str]) -> FastAPI:
    """The app over one run.  `allowed_hosts`: Host headers it answers (None: any, with --host)."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    env = _templates()
    static = _static()
    csrf = secrets.token_urlsafe(32)
    want_token = token.encode()
    want_csrf = csrf.encode()

    def same(given: str | None, want: bytes) -> bool:
        return given is not None and secrets.compare_digest(given.encode("utf-8", "replace"), want)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        host = request.headers.get("host", "")
        if allowed_hosts is not None and host not in allowed_hosts:
            return PlainTextResponse("unknown host", status_code=400)
        from_query = request.query_params.get("token")
        if not (same(request.cookies.get(COOKIE), want_token) or same(request.headers.get("x-review-token"), want_token)
                or same(from_query, want_token)):
            return PlainTextResponse("unauthorized: open the URL grader review printed", status_code=401)
        if request.method not in ("GET", "HEAD"):
            origin = request.headers.get("origin")
            if origin is not None and origin not in (f"http://{host}", f"https://{host}"):
                return JSONResponse({"error": "cross-origin request refused"}, status_code=403)
            if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
                return JSONResponse({"error": "cross-site request refused"}, status_code=403)
            if not same(request.headers.get("x-csrf-token"), want_csrf):
                return JSONResponse({"error": "missing or wrong CSRF token"}, status_code=403)
        if from_query is not None and request.method == "GET":
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            resp: Response = RedirectResponse(request.url.path + ("?" + urlencode(rest) if rest else ""), status_code=303)
            resp.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")
        else:
            resp = await call_next(request)
        resp.headers["Content-Security-Policy"] = CSP
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["Cache-Control"] = "no-store"
        return resp

    def page(name: str, **ctx) -> HTMLResponse:
        state.refresh()
        html = env.get_template(name).render(csrf=csrf, progress=state.progress(), run=state.run, state=state, **ctx)
        return HTMLResponse(html)

    def bad(exc: Exception, status: int = 400) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=status)

    @app.get("/", response_class=HTMLResponse)
    def ranking(request: Request):
        try:
            q = RankingQuery.model_validate(dict(request.query_params))
        except ValidationError:
            q = RankingQuery()
        state.refresh()
        rows = filter_ranking(state.ranking(), q)
        pages = max(1, -(-len(rows) // PAGE))
        shown = rows[(q.page - 1) * PAGE: q.page * PAGE]
        base = {k: v for k, v in q.model_dump().items() if v not in ("", False) and k != "page"}
        return page("ranking.j2", rows=shown, n=len(rows), q=q, pages=pages, base=base, urlencode=urlencode,
                    passed=sum(1 for r in rows if r.passed))

    @app.get("/candidate/{ci}", response_class=HTMLResponse)
    def candidate(ci: int):
        if not 0 <= ci < len(state.run.candidates):
            return PlainTextResponse("no such candidate", status_code=404)
        state.refresh()
        ranking = state.ranking()
        order = [r.index for r in ranking]
        pos = order.index(ci)
        summary = ranking[pos]
        cand = state.run.candidates[ci]
        return page("candidate.j2", ci=ci, cand=cand, summary=summary, answers=state.run.of_candidate(cand),
                    prev=order[pos - 1] if pos else None, next=order[pos + 1] if pos + 1 < len(order) else None,
                    verdict=state.verdict(cand), qindex={q: k for k, q in enumerate(state.run.questions)})

    @app.get("/question/{qi}", response_class=HTMLResponse)
    def question(qi: int):
        if not 0 <= qi < len(state.run.questions):
            return PlainTextResponse("no such question", status_code=404)
        qid = state.run.questions[qi]
        first = state.run.records[state.run.of_question(qid)[0]]
        return page("question.j2", qi=qi, qid=qid, first=first, groups=groups.groups(qid))

    @app.get("/questions", response_class=HTMLResponse)
    def questions():
        return page("questions.j2", qs=[(k, q, state.run.records[state.run.of_question(q)[0]], len(state.run.of_question(q)))
                                         for k, q in enumerate(state.run.questions)])

    @app.get("/queue", response_class=HTMLResponse)
    def queue():
        state.refresh()
        items = state.queue()
        return page("queue.j2", items=items[:200], total=len(items))

    @app.get("/api/progress")
    def progress():
        state.refresh()
        return state.progress().model_dump()

    def after(decisions) -> JSONResponse:
        prog = state.progress()
        out = []
        for d in decisions:
            i = state.run.index(d.candidate, d.question_id)
            total, top, pct = state.candidate_total(d.candidate)
            other = None
            if d.conflict_with is not None:
                other = next((x for x in state.store.history.get((d.candidate, d.question_id), []) if x.id == d.conflict_with), None)
            out.append({"id": d.id, "answer": i, "kind": d.kind, "new_score": d.new_score, "old_score": d.old_score,
                        "verdict": d.verdict, "reviewer": d.reviewer, "at": d.at, "note": d.note,
                        "candidate_total": f"{total:g}/{top:g} ({pct:g}%)",
                        "conflict": None if other is None else {"id": other.id, "reviewer": other.reviewer, "at": other.at,
                                                                "new_score": other.new_score, "verdict": other.verdict}})
        return JSONResponse({"decisions": out, "progress": prog.text, "reviewed": prog.reviewed, "total": prog.total})

    @app.post("/api/answer/{i}")
    def decide(i: int, body: AnswerBody):
        try:
            return after([state.decide(i, body.kind, body.score, body.note, body.seen)])
        except InputError as exc:
            return bad(exc)

    @app.post("/api/group")
    def grade_group(body: GroupBody):
        if not 0 <= body.question < len(state.run.questions):
            return bad(InputError("question: no such question"))
        qid = state.run.questions[body.question]
        if any(not 0 <= i < len(state.run.records) or state.run.records[i].question_id != qid for i, _ in body.members):
            return bad(InputError("members: answers of another question"))
        try:
            return after(state.grade_group(body.members, body.score, body.note))
        except InputError as exc:
            return bad(exc)

    @app.post("/api/verdict/{ci}")
    def verdict(ci: int, body: VerdictBody):
        try:
            return after([state.set_verdict(ci, body.verdict, body.note, body.seen)])
        except InputError as exc:
            return bad(exc)

    @app.get("/export/report.html")
    def export_report():
        from grader.review.export import report_html

        html = report_html(state.run, state.human_review(), pass_mark=state.pass_mark)
        return HTMLResponse(html, headers={"Content-Disposition": 'attachment; filename="report.html"'})

    @app.get("/export/graded.jsonl")
    def export_graded():
        from grader.review.export import graded_jsonl, graded_rows

        text = graded_jsonl(graded_rows(state.run, state.human_review(), bank_questions))
        return PlainTextResponse(text, headers={"Content-Disposition": 'attachment; filename="graded.jsonl"'})

    @app.get("/static/{name}")
    def static_file(name: str):
        hit = static.get(name)
        if hit is None:
            return PlainTextResponse("not found", status_code=404)
        return Response(hit[0], media_type=hit[1])

    return app
