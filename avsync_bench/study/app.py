"""The study web app (Starlette + Jinja2, served by uvicorn by ``study serve``).

Participant routes, all under their token (``/p/{token}``): the consent page, ``/item`` (the
next unanswered assignment, or the thank-you page), media by assignment id and slot
(``/a/{id}/video/{slot}``, ``/a/{id}/image``, ``/a/{id}/audio``; Starlette's ``FileResponse``
answers HTTP range requests, so seeking works) and ``POST /vote``. ``/admin`` shows progress
behind the admin key (``X-Admin-Key`` header or ``?key=``).

Security (issue #14): every file path comes from the database, never from the request; a
participant only reaches their own assignments; the vote of an item is committed (votes unique
per assignment and question) before the next item is served; a vote for an item not assigned to
the token, a replayed vote and a malformed request get a 4xx answer, a log line on the
``avsync_bench.study`` logger and a row in the ``refusal`` table; videos are labelled by slot
letter only, so no page, URL or header names a method while the study is open.
"""

from __future__ import annotations

import hmac
import json
import logging
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from avsync_bench.study.models import (
    ROLE_GT,
    Assignment,
    Rater,
    Refusal,
    Study,
    Vote,
    token_hash,
    utcnow,
)
from avsync_bench.study.store import QUESTIONS, get_study

__all__ = ["REASON_CODES", "create_app"]

log = logging.getLogger("avsync_bench.study")

REASON_CODES = {
    "motion_follows_sound": "motion follows the sound",
    "wrong_object_moves": "the wrong object moves",
    "flicker": "flicker",
    "artefacts": "artefacts",
    "mismatch_image": "does not match the image",
}
"""Optional reason codes a participant can tick for each video (after VA-Judger's)."""

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # links carry the token
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
LETTERS = "ABCDEFGHIJ"
MAX_BODY = 64 * 1024


def create_app(sessions: sessionmaker, study_name: str) -> Starlette:
    """The ASGI app of one study. Raises StudyError when the study does not exist."""
    with sessions() as session:
        study_id = get_study(session, study_name).id
    templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

    def refuse(request: Request, status: int, reason: str, rater_id: int | None = None):
        path = _redact(request.url.path)
        log.warning("refused %s %s -> %d: %s", request.method, path, status, reason)
        with sessions() as session, session.begin():
            session.add(Refusal(study_id=study_id, rater_id=rater_id, status=status,
                                reason=reason, path=path))  # fmt: skip
        return JSONResponse({"error": reason}, status, headers=SECURITY_HEADERS)

    def page(request: Request, name: str, **context) -> Response:
        response = templates.TemplateResponse(request, name, context)
        response.headers.update(SECURITY_HEADERS)
        return response

    def rater_of(session, request: Request) -> Rater | None:
        token = request.path_params["token"]
        if not 16 <= len(token) <= 100:
            return None
        rater = session.scalar(select(Rater).where(Rater.token_hash == token_hash(token)))
        return rater if rater is not None and rater.study_id == study_id else None

    def current(rater: Rater) -> Assignment | None:
        return next((a for a in rater.assignments if a.completed_at is None), None)

    async def index(request: Request) -> Response:
        return page(request, "message.html", title="User study",
                    message="Please open the personal link you were given.")  # fmt: skip

    async def consent(request: Request) -> Response:
        with sessions() as session:
            rater = rater_of(session, request)
            if rater is None:
                return refuse(request, 404, "unknown token")
            if rater.consented_at is not None:
                return RedirectResponse(f"/p/{request.path_params['token']}/item", 303)
            study = session.get(Study, study_id)
            n = len(rater.assignments)
            return page(request, "consent.html", token=request.path_params["token"],
                        n_items=n, questions=[QUESTIONS[q] for q in study.questions])  # fmt: skip

    async def give_consent(request: Request) -> Response:
        body, refused = await read_json(request)
        if refused is not None:
            return refuse(request, *refused)
        with sessions() as session, session.begin():
            rater = rater_of(session, request)
            if rater is None:
                return refuse(request, 404, "unknown token")
            if body != {"consent": True}:
                return refuse(request, 400, "malformed consent request", rater.id)
            rater.consented_at = rater.consented_at or utcnow()
        return JSONResponse({"next": f"/p/{request.path_params['token']}/item"})

    async def item_page(request: Request) -> Response:
        token = request.path_params["token"]
        with sessions() as session, session.begin():
            rater = rater_of(session, request)
            if rater is None:
                return refuse(request, 404, "unknown token")
            if rater.consented_at is None:
                return RedirectResponse(f"/p/{token}", 303)
            study = session.get(Study, study_id)
            assignment = current(rater)
            total = len(rater.assignments)
            if assignment is None:
                return page(request, "message.html", title="Thank you",
                            message=f"All {total} items are done. You can close this page.")  # fmt: skip
            if study.status != "open":
                return page(request, "message.html", title="Study closed",
                            message="This study is closed; thank you.")  # fmt: skip
            if assignment.shown_at is None:
                assignment.shown_at = utcnow()
            done = sum(a.completed_at is not None for a in rater.assignments)
            base = f"/p/{token}/a/{assignment.id}"
            return page(
                request, "item.html", token=token, assignment=assignment.id,
                progress=done + 1, total=total, class_text=assignment.item.class_text,
                image=f"{base}/image", audio=f"{base}/audio",
                videos=[(LETTERS[s], f"{base}/video/{s}") for s in range(len(assignment.layout))],
                questions=[(q, QUESTIONS[q]) for q in study.questions], reasons=REASON_CODES,
            )  # fmt: skip

    async def media(request: Request) -> Response:
        with sessions() as session:
            rater = rater_of(session, request)
            if rater is None:
                return refuse(request, 404, "unknown token")
            assignment = session.get(Assignment, request.path_params["aid"])
            if assignment is None or assignment.rater_id != rater.id:
                return refuse(request, 403, "media of an assignment not given to this token",
                              rater.id)  # fmt: skip
            kind, item = request.path_params["kind"], assignment.item
            if kind == "image":
                path, media_type = item.image_path, "image/png"
            elif kind == "audio":
                path, media_type = item.audio_path, "audio/wav"
            else:
                slot = request.path_params.get("slot", -1)
                if not 0 <= slot < len(assignment.layout):
                    return refuse(request, 404, "no such video slot", rater.id)
                by_method = {v.method_id: v.path for v in item.videos}
                path, media_type = by_method[assignment.layout[slot]], "video/mp4"
        response = FileResponse(path, media_type=media_type)
        response.headers.update(SECURITY_HEADERS)
        response.headers["Cache-Control"] = "private, max-age=3600"
        return response

    async def read_json(request: Request):
        """The JSON body, or a (status, reason) refusal: JSON only, at most 64 KiB."""
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return None, (415, "the body must be application/json")
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_BODY:
                return None, (413, f"the body is larger than {MAX_BODY} bytes")
        try:
            return json.loads(raw), None
        except ValueError:
            return None, None  # malformed: refused by the caller as 400

    async def vote(request: Request) -> Response:
        body, refused = await read_json(request)
        if refused is not None:
            return refuse(request, *refused)
        try:
            with sessions() as session, session.begin():
                refused = _record_vote(session, request, body)
        except IntegrityError:  # two submissions raced past the completed_at check
            return refuse(request, 409, "replayed vote (concurrent)")
        if refused is not None:
            return refuse(request, *refused)
        return JSONResponse({"next": f"/p/{request.path_params['token']}/item"},
                            headers=SECURITY_HEADERS)  # fmt: skip

    def _record_vote(session, request: Request, body) -> tuple | None:
        """Store the vote, or return (status, reason, rater id) for a refusal."""
        rater = rater_of(session, request)
        if rater is None:
            return 404, "unknown token", None
        study = session.get(Study, study_id)
        if study.status != "open":
            return 403, "the study is closed", rater.id
        problem = _malformed(body, study.questions)
        if problem:
            return 400, f"malformed vote: {problem}", rater.id
        assignment = session.get(Assignment, body["assignment"])
        if assignment is None or assignment.rater_id != rater.id:
            return 403, "vote for an item not assigned to this token", rater.id
        if assignment.completed_at is not None:
            return 409, "replayed vote: this item was already answered", rater.id
        if current(rater) is not assignment:
            return 409, "vote for an item that is not the current one", rater.id
        if assignment.shown_at is None:
            return 409, "vote for an item whose page was never served", rater.id
        n = len(assignment.layout)
        slots = [*body["answers"].values(), *map(int, (body.get("reasons") or {}))]
        if any(not 0 <= s < n for s in slots):
            return 400, f"malformed vote: slots are 0..{n - 1}", rater.id
        for question, slot in body["answers"].items():
            session.add(Vote(assignment_id=assignment.id, question=question, slot=slot,
                             method_id=assignment.layout[slot]))  # fmt: skip
        assignment.completed_at = utcnow()
        assignment.reasons = {k: sorted(set(v)) for k, v in (body.get("reasons") or {}).items()}
        assignment.client_ms = body.get("client_ms")
        return None

    async def admin(request: Request) -> Response:
        key = request.headers.get("x-admin-key") or request.query_params.get("key") or ""
        with sessions() as session:
            study = session.get(Study, study_id)
            if not hmac.compare_digest(token_hash(key), study.admin_key_hash):
                return refuse(request, 403, "wrong admin key")
            gt_ids = {m.id for m in study.methods if m.role == ROLE_GT}
            rows = []
            for rater in study.raters:
                failed = 0
                for a in rater.assignments:
                    if a.item.is_attention and a.completed_at is not None:
                        votes = session.scalars(select(Vote).where(Vote.assignment_id == a.id))
                        failed += any(v.method_id not in gt_ids for v in votes)
                done = sum(a.completed_at is not None for a in rater.assignments)
                rows.append({"label": rater.label, "invited": rater.token_hash is not None,
                             "consented": rater.consented_at is not None, "done": done,
                             "total": len(rater.assignments), "failed_attention": failed})  # fmt: skip
            refusals = session.scalars(select(Refusal).where(Refusal.study_id == study_id)
                                       .order_by(Refusal.id.desc()).limit(20)).all()  # fmt: skip
            n_refused = session.scalar(select(func.count(Refusal.id))
                                       .where(Refusal.study_id == study_id))  # fmt: skip
            return page(request, "admin.html", study=study, rows=rows, refusals=refusals,
                        n_refused=n_refused)  # fmt: skip

    routes = [
        Route("/", index),
        Route("/admin", admin),
        Route("/p/{token}", consent),
        Route("/p/{token}/consent", give_consent, methods=["POST"]),
        Route("/p/{token}/item", item_page),
        Route("/p/{token}/vote", vote, methods=["POST"]),
        Route("/p/{token}/a/{aid:int}/{kind:str}", media),
        Route("/p/{token}/a/{aid:int}/{kind:str}/{slot:int}", media),
    ]
    return Starlette(routes=routes)


def _redact(path: str) -> str:
    """The request path with its token replaced by ``<token>`` (tokens are never logged)."""
    if "/p/" not in path:
        return path
    head, _, rest = path.partition("/p/")
    return head + "/p/<token>" + ("/" + rest.split("/", 1)[1] if "/" in rest else "")


def _malformed(body, questions: list[str]) -> str | None:
    """Why a vote body is malformed, or None. Expected: {"assignment": int, "answers":
    {question: slot}, "reasons": {slot: [code, …]} (optional), "client_ms": int (optional)}."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    extra = set(body) - {"assignment", "answers", "reasons", "client_ms"}
    if extra:
        return f"unknown field(s) {sorted(extra)}"
    if type(body.get("assignment")) is not int:
        return "'assignment' must be an integer"
    answers = body.get("answers")
    if not isinstance(answers, dict) or set(answers) != set(questions):
        return f"'answers' must answer exactly {questions}"
    if any(type(v) is not int for v in answers.values()):
        return "answers must be slot numbers"
    reasons = body.get("reasons") or {}
    if not isinstance(reasons, dict):
        return "'reasons' must map a slot to a list of codes"
    for slot, codes in reasons.items():
        if not (isinstance(slot, str) and slot.isdigit()) or not isinstance(codes, list):
            return "'reasons' must map a slot to a list of codes"
        if any(code not in REASON_CODES for code in codes):
            return f"unknown reason code; known: {sorted(REASON_CODES)}"
    client_ms = body.get("client_ms")
    if client_ms is not None and (type(client_ms) is not int or not 0 <= client_ms < 10**9):
        return "'client_ms' must be a non-negative integer"
    return None
