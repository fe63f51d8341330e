"""Two pieces of work on two cores: the caller runs one, a helper thread the other.

The compiled hash searches release the GIL (:mod:`karung.vision.mih_kernel`), so a thread is a
core. The helper is one shared thread; when it is busy (another caller's half is queued), the
caller takes its half back and runs both itself, so a loaded process degrades to one core per
search instead of waiting in a queue.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Final, TypeVar

T = TypeVar("T")
U = TypeVar("U")

# KARUNG_SEARCH_THREADS=1 keeps every search on the calling thread.
_ENV: Final = "KARUNG_SEARCH_THREADS"
_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def available() -> bool:
    """Whether a second core may be used: more than one CPU, not turned off by the
    environment."""
    if os.environ.get(_ENV, "").strip() == "1":
        return False
    return (os.cpu_count() or 1) >= 2


def both(first: Callable[[], T], second: Callable[[], U]) -> tuple[T, U]:
    """``(first(), second())``, ``second`` on the helper thread while ``first`` runs here
    (or here afterwards, if the helper had not started it by then)."""
    future = _helper().submit(second)
    a = first()
    if future.cancel():  # the helper was busy: do it here rather than wait for it
        return a, second()
    return a, future.result()


def _helper() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="karung-search")
        return _pool
