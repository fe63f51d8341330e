"""Turning an ``Authorization`` header into a :class:`Principal`, with a short positive cache."""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy.orm import sessionmaker

from karung.serve.auth.keys import Principal, hash_key, verify_key


class Authenticator:
    """Verify keys against the database; remember valid ones for ``ttl`` seconds.

    Only successes are cached (a newly created key works at once); a revocation made through
    another replica or the CLI takes effect within ``ttl`` seconds, one made through this
    replica's admin API at once (:meth:`invalidate`).
    """

    def __init__(self, sessions: sessionmaker[Any], ttl: float = 5.0) -> None:
        self._sessions = sessions
        self._ttl = ttl
        self._cache: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def cached(self, key: str) -> Principal | None:
        """The cached principal of ``key`` if still fresh (cheap, safe on the event loop)."""
        digest = hash_key(key)
        with self._lock:
            hit = self._cache.get(digest)
        if hit is not None and hit[1] > time.monotonic():
            return hit[0]
        return None

    def verify(self, key: str) -> Principal | None:
        """Look ``key`` up in the database (blocking) and cache a success."""
        with self._sessions() as session:
            principal = verify_key(session, key)
        if principal is not None and self._ttl > 0:
            with self._lock:
                self._cache[hash_key(key)] = (principal, time.monotonic() + self._ttl)
        return principal

    def invalidate(self) -> None:
        """Forget every cached key (after a revocation)."""
        with self._lock:
            self._cache.clear()
