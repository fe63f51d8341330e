"""Slow down password guessing with backoff kept in the database.

Every attempt is counted *before* the password is checked, in one transaction that locks the
counters (a row lock on PostgreSQL, the write lock on SQLite): a hundred parallel guesses get at
most ``free`` password checks, whichever worker or replica they reach. Counters are kept per
(client address, account) and per address, never per account alone, so a stranger cannot lock
a moderator out: their own address keeps its own counter. After ``free`` failures each further
attempt waits twice as long as the last (1 s, 2 s, 4 s, ... up to ``max_seconds``); a
successful login clears its (address, account) counter.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from karung.serve.review.models import LoginThrottleRow

_PRUNE_AFTER: Final = 86_400.0  # counters idle this long are forgotten
_PRUNE_CHANCE: Final = 1 / 64


@dataclass(frozen=True)
class Backoff:
    """``free`` failures without a wait, then waits doubling from ``base_seconds``."""

    free: int
    base_seconds: float = 1.0
    max_seconds: float = 900.0

    def delay(self, failures: int) -> float:
        """Seconds the next attempt waits after ``failures`` counted attempts."""
        if failures < self.free:
            return 0.0
        return float(min(self.max_seconds, self.base_seconds * 2 ** min(failures - self.free, 30)))


@dataclass(frozen=True)
class LoginThrottle:
    """Per (address, account): 10 free attempts; per address: 50 (an office shares one)."""

    per_account: Backoff = field(default_factory=lambda: Backoff(10))
    per_address: Backoff = field(default_factory=lambda: Backoff(50))

    def reserve(
        self, sessions: sessionmaker[Session], ip: str, account: str, now: float | None = None
    ) -> float:
        """Count one attempt of ``account`` from ``ip``: 0.0 when it may go ahead (the
        password is checked next), else the seconds to wait (nothing is counted then)."""
        now = time.time() if now is None else now
        plan = {_pair(ip, account): self.per_account, _address(ip): self.per_address}
        with sessions() as session:  # a read first: refusing needs no write (nor its fsync)
            until = select(LoginThrottleRow.locked_until).where(LoginThrottleRow.key.in_(plan))
            wait = max((u - now for u in session.scalars(until)), default=0.0)
        if wait > 0:
            return wait
        with sessions.begin() as session:  # then count it, re-checked under the lock
            for key in sorted(plan):
                _ensure(session, key, now)
            query = select(LoginThrottleRow).where(LoginThrottleRow.key.in_(sorted(plan)))
            rows = session.scalars(query.order_by(LoginThrottleRow.key).with_for_update()).all()
            wait = max((row.locked_until - now for row in rows), default=0.0)
            if wait > 0:
                return wait
            for row in rows:
                row.failures += 1
                row.locked_until = now + plan[row.key].delay(row.failures)
                row.updated_at = now
            if random.random() < _PRUNE_CHANCE:
                _prune(session, now)
        return 0.0

    def succeeded(self, sessions: sessionmaker[Session], ip: str, account: str) -> None:
        """The password was right: forget the pair's attempts, and un-count this one for the
        address (it was counted in advance)."""
        with sessions.begin() as session:
            session.execute(
                delete(LoginThrottleRow).where(LoginThrottleRow.key == _pair(ip, account))
            )
            row = session.get(LoginThrottleRow, _address(ip), with_for_update=True)
            if row is not None and row.failures > 0:
                row.failures -= 1


def _pair(ip: str, account: str) -> str:
    return f"pair:{ip}|{account[:200]}"


def _address(ip: str) -> str:
    return f"ip:{ip}"


def _ensure(session: Session, key: str, now: float) -> None:
    """Insert the counter unless it exists (the insert also takes SQLite's write lock)."""
    values: dict[str, Any] = {"key": key, "failures": 0, "locked_until": 0.0, "updated_at": now}
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(LoginThrottleRow).values(**values).on_conflict_do_nothing()
    session.execute(stmt)


def _prune(session: Session, now: float) -> None:
    session.execute(
        delete(LoginThrottleRow).where(
            LoginThrottleRow.updated_at < now - _PRUNE_AFTER,
            LoginThrottleRow.locked_until < now,
        )
    )
