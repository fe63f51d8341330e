"""Admission control for decoding: what one request and the whole process may decode at once.

An image's cost is known from its header (:func:`karung.vision.decode.decode_cost`) before any
pixel is decoded. Two budgets use it:

* :class:`RequestBudget`: the decoded pixels of one request. Sixteen images that each fit the
  per-image budget can still add up to gigabytes; the items past the request's budget get the
  item error ``request_too_complex`` and the others are scored.
* :class:`DecodeMemory`: the estimated bytes of every decode in flight in this process. An item
  waits for room (backpressure) instead of the process running out of memory; an item that
  waits longer than its deadline gets ``decode_busy``. Small images fit beside large ones, so
  ordinary photos are not queued behind a hostile request's bombs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from karung.serve.errors import ItemError


class RequestTooComplex(ItemError, code="request_too_complex"):
    """This item would take the request past its decoded-pixel budget."""


class DecodeBusy(ItemError, code="decode_busy"):
    """The service's decoding memory stayed full for longer than the item may wait."""


class RequestBudget:
    """Decoded pixels one request may spend (items take from it as they are admitted)."""

    def __init__(self, pixels: int) -> None:
        self.total = pixels
        self.left = pixels

    def take(self, pixels: int) -> None:
        """Spend ``pixels`` or raise :class:`RequestTooComplex` (nothing is spent then)."""
        if pixels > self.left:
            raise RequestTooComplex(
                f"this image decodes to {pixels} pixels; the request has {self.left} of its "
                f"{self.total} left (send fewer or smaller images per request)"
            )
        self.left -= pixels


class DecodeMemory:
    """A counting budget of bytes for decodes in flight in this process.

    Args:
        capacity: the bytes all decodes in flight may take together. A single reservation is
            clipped to it, so an image under the per-image budget always gets in eventually.
        on_change: called with the bytes in use after every change (a metrics gauge).
    """

    def __init__(self, capacity: int, on_change: Callable[[int], None] | None = None) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity must be > 0, got {capacity}")
        self.capacity = capacity
        self.in_use = 0
        self._changed: asyncio.Condition | None = None
        self._on_change = on_change

    @asynccontextmanager
    async def reserve(self, nbytes: int, timeout: float) -> AsyncIterator[None]:
        """Hold ``nbytes`` of the budget for the body of the ``async with``.

        Raises:
            DecodeBusy: no room within ``timeout`` seconds.
        """
        want = max(0, min(nbytes, self.capacity))
        changed = self._condition()
        async with changed:
            try:
                async with asyncio.timeout(timeout):
                    await changed.wait_for(lambda: self.in_use + want <= self.capacity)
            except TimeoutError as exc:
                raise DecodeBusy(
                    f"the service's decoding memory stayed full for {timeout:g}s; retry later"
                ) from exc
            self._move(want)
        try:
            yield
        finally:
            async with changed:
                self._move(-want)
                changed.notify_all()

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:  # created on first use, inside the service's event loop
            self._changed = asyncio.Condition()
        return self._changed

    def _move(self, delta: int) -> None:
        self.in_use += delta
        if self._on_change is not None:
            self._on_change(self.in_use)
