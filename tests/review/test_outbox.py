"""Webhook outbox: HMAC signature, retries with backoff against a real loopback server, no loss."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from karung.serve.review import outbox
from karung.serve.review.models import OutboxMessage

SECRET = "s3cret-for-tests"


@dataclass
class Receiver:
    """A platform stand-in: fails the first ``fail_first`` requests with HTTP 503."""

    fail_first: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append({"headers": dict(self.headers), "body": body})
            ok = len(state.requests) > state.fail_first
            self.send_response(200 if ok else 503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def _config(url: str, **kw: Any) -> outbox.WebhookConfig:
    base = {"backoff_seconds": 0.05, "backoff_max_seconds": 0.2, "timeout_seconds": 2.0}
    return outbox.WebhookConfig(url=url, secret=SECRET, **(base | kw))


def _add(sessions: sessionmaker[Session], n: int = 1) -> list[str]:
    with sessions.begin() as s:
        return [
            outbox.add_event(s, "review.decided", i, {"label": "bale", "n": i}) for i in range(n)
        ]


def _drain(worker: outbox.OutboxWorker, sessions: sessionmaker[Session], passes: int) -> None:
    """Run passes until nothing is pending (waiting out the short backoffs)."""

    async def go() -> None:
        for _ in range(passes):
            await worker.run_once()
            with sessions() as s:
                if outbox.counts(s).get("pending", 0) == 0:
                    return
            await asyncio.sleep(0.06)

    asyncio.run(go())


def test_signature_verifies_and_rejects_tampering() -> None:
    body = b'{"event":"review.decided"}'
    now = int(time.time())
    sig = outbox.sign(SECRET, now, body)
    assert sig.startswith("sha256=") and len(sig) == 7 + 64
    assert outbox.verify(SECRET, body, timestamp=str(now), signature=sig)
    assert not outbox.verify(SECRET, body + b" ", timestamp=str(now), signature=sig)
    assert not outbox.verify("other", body, timestamp=str(now), signature=sig)
    assert not outbox.verify(SECRET, body, timestamp=str(now + 1), signature=sig)
    stale = outbox.sign(SECRET, now - 3600, body)
    assert not outbox.verify(SECRET, body, timestamp=str(now - 3600), signature=stale)
    assert not outbox.verify(SECRET, body, timestamp="soon", signature=sig)


def test_retries_until_delivered_with_the_same_signed_event(
    sessions: sessionmaker[Session], receiver: Receiver
) -> None:
    receiver.fail_first = 2
    (event_id,) = _add(sessions)
    worker = outbox.OutboxWorker(sessions, _config(receiver.url))
    _drain(worker, sessions, passes=40)
    assert len(receiver.requests) == 3
    for req in receiver.requests:  # every attempt is the same event, freshly signed
        headers = {k.lower(): v for k, v in req["headers"].items()}
        assert headers["x-karung-event-id"] == event_id
        assert outbox.verify(
            SECRET,
            req["body"],
            timestamp=headers["x-karung-timestamp"],
            signature=headers["x-karung-signature"],
        )
        assert json.loads(req["body"])["data"] == {"label": "bale", "n": 0}
    with sessions() as s:
        msg = s.scalars(select(OutboxMessage)).one()
        assert (msg.status, msg.attempts, msg.last_error) == ("delivered", 3, None)
        assert msg.delivered_at is not None


def test_backoff_doubles_and_caps() -> None:
    cfg = outbox.WebhookConfig(url="x", secret="y", backoff_seconds=2, backoff_max_seconds=30)
    assert [outbox.backoff(n, cfg, jitter=False) for n in (1, 2, 3, 4, 5, 6)] == [
        2,
        4,
        8,
        16,
        30,
        30,
    ]
    assert 2 <= outbox.backoff(1, cfg) <= 2.5


def test_failed_attempt_waits_for_backoff(
    sessions: sessionmaker[Session], receiver: Receiver
) -> None:
    receiver.fail_first = 99
    _add(sessions)
    worker = outbox.OutboxWorker(
        sessions, _config(receiver.url, backoff_seconds=60, backoff_max_seconds=120)
    )
    asyncio.run(worker.run_once())
    assert asyncio.run(worker.run_once()) == 0  # not due again for a minute
    assert len(receiver.requests) == 1
    with sessions() as s:
        msg = s.scalars(select(OutboxMessage)).one()
        assert (msg.status, msg.attempts, msg.last_error) == ("pending", 1, "HTTP 503")
        assert (msg.next_attempt_at - msg.created_at).total_seconds() >= 59


def test_never_lost_dead_events_stay_and_can_be_requeued(
    sessions: sessionmaker[Session], receiver: Receiver
) -> None:
    with socket.socket() as sock:  # a port nobody listens on: connection refused
        sock.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    _add(sessions, 2)
    _drain(outbox.OutboxWorker(sessions, _config(dead_url, max_attempts=3)), sessions, passes=40)
    with sessions() as s:
        assert outbox.counts(s) == {"dead": 2}
        msgs = s.scalars(select(OutboxMessage)).all()
        assert all(m.attempts == 3 and "ConnectError" in (m.last_error or "") for m in msgs)
    with sessions.begin() as s:
        assert outbox.requeue_dead(s) == 2
    _drain(outbox.OutboxWorker(sessions, _config(receiver.url)), sessions, passes=10)
    with sessions() as s:
        assert outbox.counts(s) == {"delivered": 2}
    assert len(receiver.requests) == 2


def test_two_workers_never_send_one_event_twice(
    sessions: sessionmaker[Session], receiver: Receiver
) -> None:
    _add(sessions, 10)

    async def both() -> None:
        a = outbox.OutboxWorker(sessions, _config(receiver.url))
        b = outbox.OutboxWorker(sessions, _config(receiver.url))
        await asyncio.gather(a.run_once(), b.run_once())

    asyncio.run(both())
    ids = [r["headers"]["X-Karung-Event-Id"] for r in receiver.requests]
    assert len(ids) == 10 and len(set(ids)) == 10


def test_run_loop_stops_and_wakes(sessions: sessionmaker[Session], receiver: Receiver) -> None:
    async def go() -> None:
        worker = outbox.OutboxWorker(sessions, _config(receiver.url, poll_seconds=30))
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        await asyncio.sleep(0.1)
        _add(sessions)
        worker.wake.set()  # no 30 s poll wait: the event goes out at once
        for _ in range(100):
            if receiver.requests:
                break
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(task, timeout=5)

    asyncio.run(go())
    assert len(receiver.requests) == 1
