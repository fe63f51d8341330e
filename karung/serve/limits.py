"""Request guards that run before the application reads (and buffers) a body.

* The API key of a ``/v1`` request with a body is checked first: an unauthenticated client gets
  its 401 without the service reading, let alone parsing, what it sent.
* The body cap: a declared ``Content-Length`` over it is refused before anything is read; a
  chunked body is read up to the cap.
* A JSON body is scanned as it streams in, before it is parsed (:class:`JsonScan`): a score
  request is a few dozen flat objects, so a body of millions of ``{}`` (hundreds of MB once
  parsed) is refused with 413 after its first chunks, and nesting deeper than
  :data:`MAX_JSON_DEPTH` with 422 ``validation_error``.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from typing import Final, NamedTuple

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


class Refusal(NamedTuple):
    """An answer given instead of reading on: status, stable code, message."""

    status: int
    code: str
    message: str


class JsonScan:
    """The brackets of a JSON body as it streams in: a body that nests deeper than
    :data:`MAX_JSON_DEPTH` (422 ``validation_error``) or opens more than ``max_containers``
    objects and arrays (413 ``too_large``) is refused as soon as its first chunks show it."""

    def __init__(self, max_containers: int) -> None:
        self.max_containers = max_containers
        self.containers = 0
        self.depth = 0
        self._scan_left = 4 * max_containers  # bounded work: deep nesting shows early

    def feed(self, chunk: bytes) -> Refusal | None:
        """Take the next chunk; a :class:`Refusal` once the body is known to be refused."""
        if self._scan_left > 0:
            for match in itertools.islice(_BRACKETS.finditer(chunk), self._scan_left):
                self._scan_left -= 1
                self.depth += 1 if match.group() in (b"{", b"[") else -1
                if self.depth > MAX_JSON_DEPTH:
                    message = f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels"
                    return Refusal(422, "validation_error", message)
        self.containers += chunk.count(b"{") + chunk.count(b"[")
        if self.containers > self.max_containers:
            message = (
                f"the JSON body holds more than {self.max_containers} objects and arrays "
                "(too many items)"
            )
            return Refusal(413, "too_large", message)
        return None


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
        """Authenticate, check the declared length, read and scan a JSON body."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v for k, v in scope.get("headers", [])}
        api = scope.get("path", "").startswith("/v1/") and scope.get("method") in _BODY_METHODS
        if api and not await _authenticated(scope, headers):
            await _reject(send, 401, "unauthorized", "a valid API key is required", auth=True)
            return
        declared = _text(headers.get("content-length"))
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _reject(send, 413, "too_large", self._too_large().message)
            return
        is_json = b"json" in headers.get("content-type", b"")
        if declared is not None and not (api and is_json):
            await self.app(scope, receive, send)
            return
        scan = JsonScan(self.max_containers) if api and is_json else None
        body = await self._read_capped(receive, scan)
        if isinstance(body, Refusal):
            await _reject(send, body.status, body.code, body.message)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read_capped(self, receive: Receive, scan: JsonScan | None) -> bytes | Refusal:
        """The body, or why it is refused (over the cap; for JSON, as soon as its brackets
        say so) without reading the rest."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks)  # disconnected: let the app see an empty body
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return self._too_large()
            refusal = scan.feed(chunk) if scan is not None else None
            if refusal is not None:
                if message.get("more_body", False):
                    # Drop the rest unparsed (no memory, little CPU), so a client that sends
                    # its whole body before reading sees the answer, not a reset connection.
                    await _drain(receive, self.max_bytes - size)
                return refusal
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _too_large(self) -> Refusal:
        return Refusal(413, "too_large", f"request body exceeds {self.max_bytes} bytes")


async def _drain(receive: Receive, limit: int) -> None:
    """Receive and discard the rest of a body (at most ``limit`` bytes)."""
    seen = 0
    while seen <= limit:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return
        seen += len(message.get("body", b""))


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
