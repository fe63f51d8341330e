"""The moderator web UI at ``/review``: server-rendered pages plus a small JSON API for the keys.

Pages: login, the queue grid, history, audit log, agreement. The grid's keyboard actions call the
JSON endpoints under ``/review/api``; each needs the session cookie and the page's CSRF token in
``X-CSRF-Token``. Every response carries a strict Content-Security-Policy (no inline script).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Final
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker

from karung.serve.model_history import history
from karung.serve.review import accounts, claims, decisions, pages
from karung.serve.review.accounts import SessionUser
from karung.serve.review.diverse import queue_share
from karung.serve.review.errors import AuthenticationFailed, ItemNotFound, ReviewError
from karung.serve.review.models import ReviewItem
from karung.serve.review.runtime import ReviewRuntime
from karung.serve.verdict import Match
from karung.vision.labels import LABELS

COOKIE: Final = "karung_review"
CSP: Final = (
    "default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

router = APIRouter(prefix="/review", include_in_schema=False)


def get_runtime(request: Request) -> ReviewRuntime:
    """The review area's state."""
    rt: ReviewRuntime = request.app.state.review
    return rt


def get_sessions(request: Request) -> sessionmaker[Session]:
    """The service's session factory."""
    factory: sessionmaker[Session] = request.app.state.sessions
    return factory


Runtime = Annotated[ReviewRuntime, Depends(get_runtime)]
Sessions = Annotated[sessionmaker[Session], Depends(get_sessions)]


def optional_user(request: Request, sessions: Sessions) -> SessionUser | None:
    """The logged-in moderator, or None."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    with sessions() as session:
        try:
            return accounts.resolve(session, token)
        except AuthenticationFailed:
            return None


MaybeUser = Annotated[SessionUser | None, Depends(optional_user)]


def api_user(request: Request, user: MaybeUser) -> SessionUser:
    """The logged-in moderator of a JSON call; the CSRF header must match the session."""
    if user is None:
        raise AuthenticationFailed("not logged in or session expired")
    if request.headers.get("X-CSRF-Token") != user.csrf_token:
        raise AuthenticationFailed("missing or wrong CSRF token (reload the page)")
    return user


ApiUser = Annotated[SessionUser, Depends(api_user)]


def _login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/review/login?next={quote(target)}", status_code=303)


def _page(
    rt: ReviewRuntime, request: Request, name: str, context: dict[str, Any], status: int = 200
) -> HTMLResponse:
    response = rt.templates.TemplateResponse(request, name, context, status_code=status)
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


# --- login -------------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, rt: Runtime, next: str = "/review") -> HTMLResponse:
    """The login page."""
    return _page(rt, request, "login.html", {"next": _safe_next(next), "error": None})


@router.post("/login", response_class=HTMLResponse)
def login_submit(
    request: Request,
    rt: Runtime,
    sessions: Sessions,
    name: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/review",
) -> Response:
    """Check the password, set the session cookie, go to ``next``."""
    ip = request.client.host if request.client else "-"
    account = name.strip().lower()
    ctx = {"next": _safe_next(next), "name": name}
    wait = rt.throttle.reserve(sessions, ip, account)  # counted before the password is checked
    if wait > 0:
        error = f"too many failed logins: wait {math.ceil(wait)} s"
        return _page(rt, request, "login.html", ctx | {"error": error}, status=429)
    try:
        with sessions.begin() as session:
            user = accounts.login(session, name, password, hours=rt.settings.session_hours)
    except AuthenticationFailed as exc:
        return _page(rt, request, "login.html", ctx | {"error": str(exc)}, status=401)
    rt.throttle.succeeded(sessions, ip, account)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE,
        user.token,
        max_age=int(rt.settings.session_hours * 3600),
        httponly=True,
        samesite="strict",
        secure=rt.settings.cookie_secure,
        path="/review",
    )
    return response


@router.post("/logout")
def logout(
    request: Request, sessions: Sessions, user: MaybeUser, csrf: Annotated[str, Form()] = ""
) -> Response:
    """End the session (the form carries the CSRF token)."""
    if user is not None and csrf == user.csrf_token:
        with sessions.begin() as session:
            accounts.logout(session, user.token)
    response = RedirectResponse("/review/login", status_code=303)
    response.delete_cookie(COOKIE, path="/review")
    return response


def _safe_next(target: str) -> str:
    """Only local review paths: ``next`` must not become an open redirect."""
    ok = target.startswith("/review") and not target.startswith("//") and "\\" not in target
    return target if ok else "/review"


# --- pages -------------------------------------------------------------------------------------


def _claim_cards(
    rt: ReviewRuntime, sessions: sessionmaker[Session], moderator: str
) -> tuple[list[dict[str, Any]], int]:
    """Renew this moderator's leases, top the batch up; its cards and the pending count."""
    with sessions.begin() as session:
        items = claims.claim_batch(
            session,
            moderator,
            limit=rt.settings.claim_batch,
            lease_seconds=rt.settings.lease_seconds,
        )
        return [pages.card(item) for item in items], claims.pending_count(session)


@router.get("", response_class=HTMLResponse)
def queue_page(request: Request, rt: Runtime, sessions: Sessions, user: MaybeUser) -> Response:
    """The grid: claims (or keeps) this moderator's batch and renders it."""
    if user is None:
        return _login_redirect(request)
    cards, waiting = _claim_cards(rt, sessions, user.name)
    with sessions() as session:
        diverse, queued = queue_share(session)
    ctx = pages.base_context(user, rt) | {"cards": cards, "waiting": waiting, "active": "queue"}
    ctx["diverse"] = {"share": rt.settings.diverse_share, "waiting": diverse, "queued": queued}
    return _page(rt, request, "queue.html", ctx)


@router.get("/models", response_class=HTMLResponse)
def models_page(request: Request, rt: Runtime, sessions: Sessions, user: MaybeUser) -> Response:
    """Model history: every swap (promotions, rollbacks) with each model's lineage."""
    if user is None:
        return _login_redirect(request)
    with sessions() as session:
        rows = [h.to_dict() for h in history(session, 100)]
    ctx = pages.base_context(user, rt) | {"rows": rows, "active": "models"}
    return _page(rt, request, "models.html", ctx)


@router.get("/history", response_class=HTMLResponse)
def history_page(
    request: Request,
    rt: Runtime,
    sessions: Sessions,
    user: MaybeUser,
    who: str = "me",
    before: int | None = None,
) -> Response:
    """Decisions, newest first: the moderator's own (default) or everyone's."""
    if user is None:
        return _login_redirect(request)
    with sessions() as session:
        rows = pages.history(session, None if who == "all" else user.name, before)
    ctx = pages.base_context(user, rt) | {"rows": rows, "who": who, "active": "history"}
    return _page(rt, request, "history.html", ctx)


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    rt: Runtime,
    sessions: Sessions,
    user: MaybeUser,
    item: int | None = None,
    before: int | None = None,
) -> Response:
    """The audit log (read-only by construction), newest first."""
    if user is None:
        return _login_redirect(request)
    with sessions() as session:
        rows = pages.audit_rows(session, item, before)
    ctx = pages.base_context(user, rt) | {"rows": rows, "item": item, "active": "audit"}
    return _page(rt, request, "audit.html", ctx)


@router.get("/agreement", response_class=HTMLResponse)
def agreement_page(request: Request, rt: Runtime, sessions: Sessions, user: MaybeUser) -> Response:
    """Cohen's kappa per moderator pair on double-reviewed items."""
    if user is None:
        return _login_redirect(request)
    with sessions() as session:
        rows = pages.agreement_rows(session)
    ctx = pages.base_context(user, rt) | {"rows": rows, "active": "agreement"}
    return _page(rt, request, "agreement.html", ctx)


@router.get("/items/{item_id}/image")
def item_image(item_id: int, sessions: Sessions, user: MaybeUser) -> Response:
    """The stored copy of an item's image (moderators only)."""
    if user is None:
        raise AuthenticationFailed("not logged in")
    with sessions() as session:
        item = session.get(ReviewItem, item_id)
        if item is None:
            raise ItemNotFound(f"no review item {item_id}")
        data = item.thumbnail
    return Response(data, media_type="image/jpeg", headers=pages.PRIVATE_IMAGE_HEADERS)


@router.get("/items/{item_id}/match/{index}/image")
def match_image(
    item_id: int, index: int, request: Request, sessions: Sessions, user: MaybeUser
) -> Response:
    """The confirmed photo behind the item's ``index``-th bank match, when review confirmed it."""
    from karung.serve.review.bankbridge import match_image as bank_image

    if user is None:
        raise AuthenticationFailed("not logged in")
    with sessions() as session:
        item = session.get(ReviewItem, item_id)
        matches = list(item.matches or []) if item is not None else []
        if not 0 <= index < len(matches):
            raise ItemNotFound(f"item {item_id} has no match {index}")
        match = Match.from_dict(matches[index])
        data = bank_image(session, match, getattr(request.app.state, "engine", None))
    if data is None:
        raise ItemNotFound("no stored image for this bank entry")
    return Response(data, media_type="image/jpeg", headers=pages.PRIVATE_IMAGE_HEADERS)


# --- JSON API for the keyboard -----------------------------------------------------------------


class DecideIn(BaseModel):
    """A label for a held item."""

    item_id: int
    label: str
    reason_code: str


class ItemIn(BaseModel):
    """An item id."""

    item_id: int


@router.post("/api/decide")
def api_decide(
    body: DecideIn, request: Request, rt: Runtime, sessions: Sessions, user: ApiUser
) -> dict[str, Any]:
    """Label an item; answers its new state."""
    with sessions.begin() as session:
        item = decisions.decide(
            session,
            body.item_id,
            user.name,
            body.label,
            body.reason_code,
            policy=rt.policy,
            effects=rt.effects(request.app),
        )
        result = pages.item_result(item)
    rt.after_commit(request.app)
    return result


@router.post("/api/skip")
def api_skip(body: ItemIn, rt: Runtime, sessions: Sessions, user: ApiUser) -> dict[str, Any]:
    """Pass an item on to another moderator."""
    with sessions.begin() as session:
        return pages.item_result(decisions.skip(session, body.item_id, user.name))


@router.post("/api/undo")
def api_undo(request: Request, rt: Runtime, sessions: Sessions, user: ApiUser) -> dict[str, Any]:
    """Take back the moderator's last decision; answers the item's card to show again."""
    with sessions.begin() as session:
        item = decisions.undo_last(
            session, user.name, policy=rt.policy, effects=rt.effects(request.app)
        )
        result = pages.item_result(item)
        card = pages.card(item)
    rt.after_commit(request.app)
    html = rt.templates.get_template("_card.html").render(card=card, labels=LABELS)
    return result | {"card_html": html}


@router.post("/api/claim")
def api_claim(rt: Runtime, sessions: Sessions, user: ApiUser) -> dict[str, Any]:
    """Renew held leases and top the batch up; answers the cards of all held items."""
    cards, waiting = _claim_cards(rt, sessions, user.name)
    template = rt.templates.get_template("_card.html")
    return {
        "items": [c["id"] for c in cards],
        "cards_html": [template.render(card=c, labels=LABELS) for c in cards],
        "waiting": waiting,
    }


@router.post("/api/release")
def api_release(sessions: Sessions, user: ApiUser) -> dict[str, Any]:
    """Give every held item back (the page calls this when the moderator leaves)."""
    with sessions.begin() as session:
        return {"released": claims.release(session, user.name)}


def error_response(exc: ReviewError) -> JSONResponse:
    """The service's error body for a review error."""
    from karung.serve.errors import error_body

    return JSONResponse(error_body(exc.code, str(exc)), exc.http_status)
