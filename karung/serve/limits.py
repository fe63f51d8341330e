"""Request guards that run before the application reads (and buffers) a body.

* The API key of a ``/v1`` request with a body is checked first: an unauthenticated client gets
  its 401 without the service reading, let alone parsing, what it sent.
* The body cap: a declared ``Content-Length`` over it is refused before anything is read; a
  chunked body is read up to the cap.
* A JSON body is scanned before it is parsed: a score request is a few dozen flat objects, so a
  body of millions of ``{}`` (hundreds of MB once parsed) is refused with 413, and nesting
  deeper than :data:`MAX_JSON_DEPTH` with 422 ``validation_error``.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from typing import Final

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from karung.serve.logs import current_request_id

MAX_JSON_DEPTH: Final = 16
_BRACKETS: Final = re.compile(rb"[\[\]{}]")
_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def key_from_headers(get: Callable[[str], str | None]) -> str | None:
    """The API key of ``Authorization: Bearer <key>`` or ``X-API-Key`` (``get``: a header
    lookup by lower-case name)."""
    scheme, _, value = (get("authorization") or "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return get("x-api-key") or None


class BodyLimitMiddleware:
    """The guards of the module docstring.

    Args:
        max_bytes: the body cap (413 ``too_large`` over it).
        max_containers: JSON objects plus arrays a ``/v1`` body may hold (413 over it).
    """

    def __init__(self, app: ASGIApp, max_bytes: int, max_containers: int = 1024) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_containers = max_containers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Authenticate, check the declared length, pre-read and scan a JSON body."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[str, bytes] = {k.decode("latin-1"): v for k, v in scope.get("headers", [])}
        api = scope.get("path", "").startswith("/v1/") and scope.get("method") in _BODY_METHODS
        if api and not await _authenticated(scope, headers):
            await _reject(send, 401, "unauthorized", "a valid API key is required", auth=True)
            return
        raw_length = headers.get("content-length")
        declared = None if raw_length is None else raw_length.decode("latin-1")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(send)
            return
        is_json = b"json" in headers.get("content-type", b"")
        if declared is not None and not (api and is_json):
            await self.app(scope, receive, send)
            return
        body = await self._read_capped(receive)
        if body is None:
            await self._too_large(send)
            return
        if api and is_json and await self._refused(body, send):
            return
        await self.app(scope, _replay(body, receive), send)

    async def _refused(self, body: bytes, send: Send) -> bool:
        """Answer (and say so) when the JSON body holds too many containers or nests too deep."""
        if _depth(body, 4 * self.max_containers) > MAX_JSON_DEPTH:
            message = f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels"
            await _reject(send, 422, "validation_error", message)
            return True
        opened = body.count(b"{") + body.count(b"[")
        if opened > self.max_containers:
            message = (
                f"the JSON body holds {opened} objects and arrays; at most "
                f"{self.max_containers} (too many items)"
            )
            await _reject(send, 413, "too_large", message)
            return True
        return False

    async def _read_capped(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks)  # disconnected: let the app see an empty body
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _too_large(self, send: Send) -> None:
        await _reject(send, 413, "too_large", f"request body exceeds {self.max_bytes} bytes")


def _depth(body: bytes, brackets: int) -> int:
    """The deepest nesting among the first ``brackets`` brackets (bounded work: deep nesting
    shows within its first few brackets)."""
    depth = deepest = 0
    for match in itertools.islice(_BRACKETS.finditer(body), brackets):
        depth += 1 if match.group() in (b"{", b"[") else -1
        deepest = max(deepest, depth)
    return deepest


async def _authenticated(scope: Scope, headers: dict[str, bytes]) -> bool:
    """Whether the request carries a known, unrevoked API key (scopes are the route's job)."""
    app = scope.get("app")
    auth = getattr(getattr(app, "state", None), "auth", None)
    if auth is None:  # not started yet: the route answers (503 or 401)
        return True
    key = key_from_headers(lambda name: _text(headers.get(name)))
    if key is None:
        return False
    principal = auth.cached(key) or await run_in_threadpool(auth.verify, key)
    return principal is not None


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


async def _reject(send: Send, status: int, code: str, message: str, auth: bool = False) -> None:
    body = json.dumps(
        {"error": {"code": code, "message": message}, "request_id": current_request_id()}
    ).encode()
    # The body was not read: close the connection rather than leave it unread on the socket.
    headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
    if auth:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that yields the pre-read body once, then defers to the real one."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
