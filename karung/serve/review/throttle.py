"""Slow down password guessing: a sliding window of failed logins per key."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Final

_MAX_KEYS: Final = 10_000


@dataclass
class LoginThrottle:
    """At most ``max_failures`` failed logins per key within ``window_seconds``.

    Kept in memory per service replica: enough to turn an online guessing attack from thousands
    of tries a minute into a handful, without a table that attackers could fill.
    """

    max_failures: int = 10
    window_seconds: float = 900.0
    _failures: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def blocked(self, key: str, now: float | None = None) -> bool:
        """Whether ``key`` has used up its failures."""
        now = time.monotonic() if now is None else now
        with self._lock:
            return key in self._failures and len(self._recent(key, now)) >= self.max_failures

    def failed(self, key: str, now: float | None = None) -> None:
        """Count one failed attempt against ``key``."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._recent(key, now).append(now)
            if len(self._failures) > _MAX_KEYS:  # random names must not grow memory forever
                for stale in [k for k in self._failures if not self._recent(k, now)]:
                    del self._failures[stale]

    def succeeded(self, key: str) -> None:
        """Forget the failures of ``key``."""
        with self._lock:
            self._failures.pop(key, None)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures[key]
        while times and now - times[0] > self.window_seconds:
            times.popleft()
        return times
