"""One query image's index searches at once, shared between two cores.

A query image costs the matcher three or four searches (dihedral PDQ hashes, its pHash,
partial images). At 10 million entries each is memory latency, so a second core doubles the
cache misses in flight: :func:`search_together` gives this thread and a helper
(:mod:`karung.vision.pair`) about half the estimated work each
(:meth:`~karung.vision.mih.MultiIndexHashing.cost`), splitting the searches' query hashes, with
one hand-over for the whole image. Answers are those of the searches run one by one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from karung.vision import pair
from karung.vision.mih import Found, MultiIndexHashing

# (index, query hashes, radius)
Search = tuple[MultiIndexHashing, np.ndarray, int]


def search_together(searches: Sequence[Search]) -> list[Found]:
    """``index.search_many(queries, radius)`` of each search, all of one query image's at once:
    where they are large enough, the query hashes are shared between this thread and a helper
    (:mod:`karung.vision.pair`) so that each does about half the estimated work, one hand-over
    in all. The answers are those of the searches one by one."""
    costs = _costs(searches)
    total = sum(costs)
    if not _worth_two_cores(total):
        return [index.search_many(queries, radius) for index, queries, radius in searches]
    cut = _halfway(searches, costs, total)
    first, second = pair.both(
        lambda: _run_rows(searches, [(0, c) for c in cut]),
        lambda: _run_rows(
            searches, [(c, q.shape[0]) for c, (_, q, _) in zip(cut, searches, strict=True)]
        ),
    )
    return [
        (
            np.concatenate([a[0], b[0] + c]),
            np.concatenate([a[1], b[1]]),
            np.concatenate([a[2], b[2]]),
        )
        for a, b, c in zip(first, second, cut, strict=True)
    ]


def cores_used(searches: Sequence[Search]) -> int:
    """How many cores :func:`search_together` gives these searches (for reports)."""
    return 2 if _worth_two_cores(sum(_costs(searches))) else 1


def _costs(searches: Sequence[Search]) -> list[float]:
    return [index.cost(radius) * queries.shape[0] for index, queries, radius in searches]


def _worth_two_cores(total: float) -> bool:
    """Some index is large enough to share (the others cost 0) and a second core is there."""
    return total > 0 and pair.available()


def _halfway(searches: Sequence[Search], costs: list[float], total: float) -> list[int]:
    """For each search, how many of its query hashes go to the first half: searches in
    order, hashes in order, until half the estimated cost (one search at most is split)."""
    cut, spent = [], 0.0
    for (_, queries, _), cost in zip(searches, costs, strict=True):
        rows = queries.shape[0]
        per_row = cost / rows if rows else 0.0
        take = rows if per_row == 0 else min(rows, max(0, round((total / 2 - spent) / per_row)))
        cut.append(take)
        spent += take * per_row
    return cut


def _run_rows(searches: Sequence[Search], rows: list[tuple[int, int]]) -> list[Found]:
    """Each search over its query rows ``start .. stop`` (row numbers relative to ``start``)."""
    out = []
    for (index, queries, radius), (start, stop) in zip(searches, rows, strict=True):
        if stop > start:
            out.append(index.search_many(queries[start:stop], radius))
        else:
            empty = np.zeros(0, dtype=np.int64)
            out.append((empty, empty, empty))
    return out
