"""Fetch slots shared fairly between API keys.

The fetcher has ``concurrency`` slots for the whole process. Without shares, one tenant sending
two requests of 64 slow URLs holds every slot and another tenant's single URL waits for them.
Each key may hold at most ``per_key`` slots at a time, so the others always find free ones;
waiting for a slot counts against the fetch's total timeout (the caller wraps both).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

ANONYMOUS = "-"


class KeySlots:
    """A global semaphore plus one per key (created on demand, dropped when idle).

    Args:
        concurrency: slots for every key together.
        key_share: the share of them one key may hold (at least one slot).
        on_change: called with ``(key, in_flight)`` whenever a key's count changes (metrics).
    """

    def __init__(
        self,
        concurrency: int,
        key_share: float,
        on_change: Callable[[str, int], None] | None = None,
    ) -> None:
        if concurrency < 1 or not 0 < key_share <= 1:
            raise ValueError("concurrency must be >= 1 and key_share in (0, 1]")
        self.concurrency = concurrency
        self.per_key = max(1, math.floor(concurrency * key_share))
        self._global = asyncio.Semaphore(concurrency)
        self._keys: dict[str, asyncio.Semaphore] = {}
        self._counts: dict[str, int] = {}
        self._on_change = on_change

    def in_flight(self, key: str) -> int:
        """Fetches of ``key`` holding or waiting for a slot."""
        return self._counts.get(key, 0)

    @asynccontextmanager
    async def hold(self, key: str | None) -> AsyncIterator[None]:
        """Take the key's slot first, then a global one (so a key over its share never
        holds a global slot while it waits)."""
        name = key or ANONYMOUS
        mine = self._keys.setdefault(name, asyncio.Semaphore(self.per_key))
        self._count(name, +1)
        try:
            async with mine, self._global:
                yield
        finally:
            self._count(name, -1)
            if self._counts.get(name, 0) == 0:
                self._keys.pop(name, None)
                self._counts.pop(name, None)

    def _count(self, key: str, delta: int) -> None:
        self._counts[key] = self._counts.get(key, 0) + delta
        if self._on_change is not None:
            self._on_change(key, self._counts[key])
