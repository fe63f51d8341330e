"""Webhook delivery through an outbox table: signed, retried with backoff, never lost.

Events are written by :func:`add_event` in the same transaction as the decision they report, so a
decision cannot commit without its event nor an event exist without its decision. The
:class:`OutboxWorker` posts due events to the platform:

* ``X-Karung-Signature: sha256=<hex>``: HMAC-SHA256 with the shared secret over
  ``"<timestamp>." + raw body``; ``X-Karung-Timestamp`` (Unix seconds) lets the receiver refuse
  replays; ``X-Karung-Event-Id`` lets it drop duplicates (delivery is at-least-once).
* any non-2xx answer or network error schedules a retry after ``base * 2**(attempts-1)`` seconds
  (capped, with up to 25% jitter so a recovering platform is not hit by every event at once);
* after ``max_attempts`` the event is parked as ``dead``, still in the table, and
  ``karung review outbox --requeue`` sends it again. Nothing is ever deleted.

Several service replicas may run the worker: an event is taken with a compare-and-set on
``locked_until``, the same pattern as item leases.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import httpx
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from karung.serve.review.models import OutboxMessage, utcnow

log = logging.getLogger(__name__)

SIGNATURE_HEADER: Final = "X-Karung-Signature"
TIMESTAMP_HEADER: Final = "X-Karung-Timestamp"
EVENT_ID_HEADER: Final = "X-Karung-Event-Id"
_BATCH: Final = 20


@dataclass(frozen=True)
class WebhookConfig:
    """Plain values the worker needs (parsed from :class:`ReviewSettings` at the edge)."""

    url: str
    secret: str
    max_attempts: int = 12
    backoff_seconds: float = 2.0
    backoff_max_seconds: float = 3600.0
    timeout_seconds: float = 10.0
    poll_seconds: float = 2.0


def add_event(session: Session, event: str, item_id: int | None, data: dict[str, Any]) -> str:
    """Write one event for delivery; return its id. The caller's commit makes it real."""
    event_id = str(uuid.uuid4())
    now = utcnow()
    body = {"id": event_id, "event": event, "created_at": now.isoformat(), "data": data}
    session.add(
        OutboxMessage(
            event_id=event_id,
            event=event,
            item_id=item_id,
            body=json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
            created_at=now,
            status="pending",
            attempts=0,
            next_attempt_at=now,
        )
    )
    return event_id


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str,
    body: bytes,
    *,
    timestamp: str,
    signature: str,
    tolerance_seconds: int = 300,
    now: float | None = None,
) -> bool:
    """Receiver-side check (platforms can copy it): right signature, timestamp not stale."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - ts) > tolerance_seconds:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature)


def backoff(attempts: int, config: WebhookConfig, *, jitter: bool = True) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt."""
    delay = min(config.backoff_max_seconds, config.backoff_seconds * 2 ** max(0, attempts - 1))
    return delay * (random.uniform(1.0, 1.25) if jitter else 1.0)


def requeue_dead(session: Session) -> int:
    """Give parked events a fresh set of attempts; return how many. The caller commits."""
    result: Any = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status == "dead")
        .values(status="pending", attempts=0, next_attempt_at=utcnow(), locked_until=None)
    )
    return int(result.rowcount)


def counts(session: Session) -> dict[str, int]:
    """Number of events per status."""
    rows = session.execute(
        select(OutboxMessage.status, func.count(OutboxMessage.id)).group_by(OutboxMessage.status)
    )
    return {str(status): int(n) for status, n in rows}


def take_due(session: Session, *, now: datetime, lock_seconds: float, limit: int) -> list[int]:
    """Lock up to ``limit`` due events for this worker (compare-and-set); return their ids."""
    due = session.scalars(
        select(OutboxMessage.id)
        .where(
            OutboxMessage.status == "pending",
            OutboxMessage.next_attempt_at <= now,
            or_(OutboxMessage.locked_until.is_(None), OutboxMessage.locked_until < now),
        )
        .order_by(OutboxMessage.id)
        .limit(limit)
    ).all()
    taken = []
    for event_id in due:
        result: Any = session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == event_id,
                OutboxMessage.status == "pending",
                or_(OutboxMessage.locked_until.is_(None), OutboxMessage.locked_until < now),
            )
            .values(locked_until=now + timedelta(seconds=lock_seconds))
        )
        if int(result.rowcount) == 1:
            taken.append(int(event_id))
    return taken


class OutboxWorker:
    """Posts due events; one :meth:`run_once` is one pass, :meth:`run` loops until stopped."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        config: WebhookConfig,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.sessions = sessions
        self.config = config
        self._client = client
        self.wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def nudge(self) -> None:
        """Cut the current poll wait short; safe to call from any thread."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.wake.set)

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set; :attr:`wake` (or :meth:`nudge`) cuts a poll wait short."""
        self._loop = asyncio.get_running_loop()
        while not stop.is_set():
            try:
                busy = await self.run_once() >= _BATCH
            except Exception:  # keep the worker alive: the events stay in the table
                log.exception("webhook outbox pass failed")
                busy = False
            if busy:
                continue
            self.wake.clear()
            waiters = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.wake.wait())}
            await asyncio.wait(
                waiters, timeout=self.config.poll_seconds, return_when=asyncio.FIRST_COMPLETED
            )
            for waiter in waiters:
                waiter.cancel()

    async def run_once(self) -> int:
        """Attempt every due event once; return how many were attempted."""
        lock = self.config.timeout_seconds * 2 + 5
        ids = await asyncio.to_thread(self._take, lock)
        if not ids:
            return 0
        client = self._client or httpx.AsyncClient(timeout=self.config.timeout_seconds)
        try:
            for event_id in ids:
                await self._deliver(client, event_id)
        finally:
            if self._client is None:
                await client.aclose()
        return len(ids)

    def _take(self, lock_seconds: float) -> list[int]:
        with self.sessions.begin() as session:
            return take_due(session, now=utcnow(), lock_seconds=lock_seconds, limit=_BATCH)

    async def _deliver(self, client: httpx.AsyncClient, message_id: int) -> None:
        body, event_id = await asyncio.to_thread(self._load, message_id)
        ts = int(time.time())
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self.config.secret, ts, body),
            TIMESTAMP_HEADER: str(ts),
            EVENT_ID_HEADER: event_id,
        }
        error: str | None = None
        try:
            response = await client.post(self.config.url, content=body, headers=headers)
            if not 200 <= response.status_code < 300:
                error = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        await asyncio.to_thread(self._settle, message_id, error)

    def _load(self, message_id: int) -> tuple[bytes, str]:
        with self.sessions() as session:
            msg = session.get_one(OutboxMessage, message_id)
            return msg.body.encode("utf-8"), msg.event_id

    def _settle(self, message_id: int, error: str | None) -> None:
        with self.sessions.begin() as session:
            msg = session.get_one(OutboxMessage, message_id)
            msg.attempts += 1
            msg.locked_until = None
            now = utcnow()
            if error is None:
                msg.status, msg.delivered_at, msg.last_error = "delivered", now, None
                return
            msg.last_error = error[:2000]
            if msg.attempts >= self.config.max_attempts:
                msg.status = "dead"
                log.error("webhook event %s parked after %d attempts", msg.event_id, msg.attempts)
            else:
                msg.next_attempt_at = now + timedelta(seconds=backoff(msg.attempts, self.config))
