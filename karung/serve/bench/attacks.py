"""The hostile side of ``karung bench hostile``: every attack of issue 16, in loops, in its own
process (so building 30 MB bodies does not slow the good-traffic driver's clock).

Each kind sends requests back to back while the attack is switched on (the benchmark
alternates quiet and hostile phases), until told to stop, and tallies its answers: ``typed``
when the answer is the one the service promises (a 4xx with a stable code, or for a
request of images the expected per-item code), ``untyped`` otherwise, ``5xx`` on its own.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import multiprocessing.synchronize
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

Check = Callable[[httpx.Response], bool]
TRANSPORT_ERROR = 599  # the tallies' status for "no answer" (never sent by the service)


@dataclass
class Tally:
    """Answers to one kind of hostile request."""

    sent: int = 0
    typed: int = 0
    untyped: int = 0
    server_errors: int = 0
    transport_errors: int = 0  # the connection failed: no answer at all
    examples: list[str] = field(default_factory=list)

    def add(self, response: httpx.Response, ok: bool) -> None:
        """Count one answer; keep a few unexpected ones to print."""
        self.sent += 1
        if response.status_code == TRANSPORT_ERROR:
            self.transport_errors += 1
        elif response.status_code >= 500:
            self.server_errors += 1
        if ok:
            self.typed += 1
        else:
            self.untyped += 1
            if len(self.examples) < 3:
                self.examples.append(f"{response.status_code} {response.text[:160]}")


def _png(mode: str, size: tuple[int, int], **params: Any) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new(mode, size, 0).save(out, "PNG", **params)
    return out.getvalue()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _items_coded(codes: set[str]) -> Check:
    """200, and every item an error with one of ``codes``."""

    def check(r: httpx.Response) -> bool:
        items = r.json().get("items", []) if r.status_code == 200 else []
        return bool(items) and all((i.get("error") or {}).get("code") in codes for i in items)

    return check


def _status(status: int, code: str) -> Check:
    def check(r: httpx.Response) -> bool:
        return r.status_code == status and r.json().get("error", {}).get("code") == code

    return check


def _mixed_items(r: httpx.Response) -> bool:
    """The good image scores, the non-objects are item errors."""
    items = r.json().get("items", []) if r.status_code == 200 else []
    codes = [(i.get("error") or {}).get("code", "ok") for i in items]
    return codes == ["ok", "item_invalid", "item_invalid", "item_invalid"]


def _degenerate(r: httpx.Response) -> bool:
    """1x1 and 2x20000 images score (the 1x1 says why it has no perceptual hash)."""
    items = r.json().get("items", []) if r.status_code == 200 else []
    return len(items) == 2 and all(i["status"] == "ok" for i in items) and bool(items[0]["notes"])


def _login(r: httpx.Response) -> bool:
    return r.status_code in (401, 429)


def kinds(good_jpeg: bytes, slow_url: str) -> dict[str, tuple[str, dict[str, Any], Check]]:
    """name -> (path, httpx request arguments, check) of each attack."""
    bombs = [_b64(_png("I;16", (7000, 7000))), _b64(_png("P", (7000, 7000), transparency=0))]
    junk = {"items": [{"image_base64": _b64(good_jpeg)}, "x", None, 5]}
    nested = '{"items": ' + "[" * 50_000 + "]" * 50_000 + "}"
    empty_items = b'{"items":[' + b"{}," * 10_000_000 + b"{}]}"  # ~31 MB
    tiny = [_b64(_png("RGB", (1, 1))), _b64(_png("RGB", (2, 20_000)))]
    return {
        "bombs x16": (
            "/v1/score",
            {"json": {"items": [{"image_base64": bombs[i % 2]} for i in range(16)]}},
            _items_coded({"image_too_complex"}),
        ),
        "31 MB of {} items": (
            "/v1/score",
            {"content": empty_items, "headers": {"Content-Type": "application/json"}},
            _status(413, "too_large"),
        ),
        "slow URLs x64": (
            "/v1/score",
            {"json": {"items": [{"url": f"{slow_url}?{i}"} for i in range(64)]}},
            _items_coded({"fetch_timeout"}),
        ),
        "non-object items": ("/v1/score", {"json": junk}, _mixed_items),
        "nested JSON": (
            "/v1/score",
            {"content": nested, "headers": {"Content-Type": "application/json"}},
            _status(422, "validation_error"),
        ),
        "1x1 and 2x20000": (
            "/v1/score",
            {"json": {"items": [{"image_base64": t} for t in tiny]}},
            _degenerate,
        ),
        "wrong logins": (
            "/review/login",
            {"data": {"name": "ana", "password": "not the password"}},
            _login,
        ),
    }


Flag = Callable[[], bool]


async def _gate(active: Flag, stopped: Flag) -> bool:
    """Wait while the attack is paused; False once it is stopped."""
    while not active():
        if stopped():
            return False
        await asyncio.sleep(0.05)
    return not stopped()


async def _unauthenticated_100mb(base: str, tally: Tally, active: Flag, stop: Flag) -> None:
    """Headers claiming 100 MB and the start of a body, without a key: 401 unread."""
    host, port = base.removeprefix("http://").split(":")
    head = (
        f"POST /v1/score HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {100 * 2**20 - 1}\r\n\r\n"
    ).encode()
    while await _gate(active, stop):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(head + b'{"items":[{},{},{},')
        await writer.drain()
        answer = await reader.read(4096)
        writer.close()
        status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1") else 0
        body = answer.partition(b"\r\n\r\n")[2].decode(errors="replace")
        tally.add(httpx.Response(status or TRANSPORT_ERROR, text=body), status == 401)


async def _loop(
    http: httpx.AsyncClient, path: str, request: dict[str, Any], check: Check, tally: Tally,
    active: Flag, stop: Flag,
) -> None:  # fmt: skip
    while await _gate(active, stop):
        try:
            response = await http.post(path, **request)
        except httpx.HTTPError as exc:
            tally.add(httpx.Response(TRANSPORT_ERROR, text=f"transport error: {exc!r}"), False)
            continue
        tally.add(response, check(response))


async def attack(
    base: str, key: str, good_jpeg: bytes, slow_url: str, active: Flag, stopped: Flag
) -> dict[str, Tally]:
    """Run every kind concurrently (two of the slow-URL requests, as in the issue) while
    ``active()``, until ``stopped()``; return the tallies."""
    tallies: dict[str, Tally] = {}
    jobs: list[Awaitable[None]] = []
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120) as http:
        for name, (path, request, check) in kinds(good_jpeg, slow_url).items():
            if "json" in request:  # encode once: the attacker's CPU is the service's here
                content = json.dumps(request.pop("json")).encode()
                request.update(content=content, headers={"Content-Type": "application/json"})
            tally = tallies.setdefault(name, Tally())
            copies = 2 if name.startswith("slow") else 1
            for _ in range(copies):
                jobs.append(_loop(http, path, request, check, tally, active, stopped))
        tallies["unauthenticated 100 MB"] = Tally()
        unauthenticated = tallies["unauthenticated 100 MB"]
        jobs.append(_unauthenticated_100mb(base, unauthenticated, active, stopped))
        await asyncio.gather(*jobs)
    return tallies


async def slow_server(port: int, stop: asyncio.Event) -> None:
    """An image host that sends headers and 4 bytes, then nothing (until told to stop)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: 5000\r\n\r\n"
                b"\xff\xd8\xff\xe0"
            )
            await writer.drain()
            await stop.wait()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await stop.wait()


def run_process(
    base: str,
    key: str,
    good_jpeg: bytes,
    slow_port: int,
    active: multiprocessing.synchronize.Event,
    stop: multiprocessing.synchronize.Event,
    out: Any,
) -> None:
    """Process entry point: serve the slow host, attack while ``active`` is set until
    ``stop`` is, put the tallies (as dicts) on ``out``."""

    # The attacker shares the benchmark's cores, which it would not in production: it yields
    # them to the service and the good clients (its CPU time is printed).
    os.nice(10)

    async def main() -> dict[str, Tally]:
        done = asyncio.Event()
        server = asyncio.create_task(slow_server(slow_port, done))
        await asyncio.sleep(0.2)
        slow_url = f"http://127.0.0.1:{slow_port}/slow.jpg"
        try:
            return await attack(base, key, good_jpeg, slow_url, active.is_set, stop.is_set)
        finally:
            done.set()
            await server

    tallies = asyncio.run(main())
    out.put({name: vars(t) for name, t in tallies.items()})
