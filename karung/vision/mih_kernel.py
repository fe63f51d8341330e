"""The compiled inner loop of multi-index hashing (numba): probe buckets, verify candidates.

NumPy pays 20-40 ns per probe or candidate (every step of a search is another pass over
temporary arrays); this loop pays a few: for each query hash and each substring table it
visits the buckets within the substring radius and computes the full Hamming distance of each
candidate at once, stopping early as soon as the running count passes the radius. With 10
million entries one query image (8 dihedral PDQ hashes, a pHash with the far band, 16 partial
pHashes) is several hundred thousand probes and candidates, hence a compiled loop
(docs/HASHING.md). The answers are the NumPy path's (a contract test holds every index to the
brute-force one); :data:`AVAILABLE` is False where numba cannot be imported, and the NumPy path
runs instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:  # numba is a dependency; the NumPy path keeps the index working without it
    import numba

    AVAILABLE = True
except ImportError:  # pragma: no cover - exercised only where numba is missing
    AVAILABLE = False


def _popcount64(x: Any) -> Any:
    """Set bits of a uint64 (the SWAR form, which LLVM compiles to one popcnt)."""
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return (x * np.uint64(0x0101010101010101)) >> np.uint64(56)


def _chunk(q: Any, start: int, width: int) -> int:
    """Bits ``start .. start + width`` of one hash (the layout of ``mih.chunk_values``)."""
    col = start // 64
    off = start % 64
    value = q[col] >> np.uint64(off)
    if off + width > 64:
        value = value | (q[col + 1] << np.uint64(64 - off))
    return int(value & np.uint64((1 << width) - 1))


def _search(
    words: Any,
    alive: Any,
    order: Any,
    offsets: Any,
    bases: Any,
    starts: Any,
    widths: Any,
    masks: Any,
    mask_at: Any,
    queries: Any,
    radius: int,
) -> tuple[Any, Any, Any]:
    """(query row, position, distance) of every live stored hash within ``radius`` found
    through some table; a hash found through several tables appears once per table.

    In three passes (bucket bounds, candidate positions, distances) rather than one nested
    loop: the loads of one pass do not depend on each other, so the processor overlaps their
    cache misses, where the nested loop would wait for each in turn.
    """
    k, n_tables = queries.shape[0], starts.shape[0]
    per_query = mask_at[n_tables]
    lo = np.empty(k * per_query, dtype=np.int64)
    hi = np.empty(k * per_query, dtype=np.int64)
    total = 0
    for row in range(k):
        for table in range(n_tables):
            value = _chunk(queries[row], starts[table], widths[table])
            for m in range(mask_at[table], mask_at[table + 1]):
                key = bases[table] + (value ^ masks[m])
                at = row * per_query + m
                lo[at] = offsets[key]
                hi[at] = offsets[key + 1]
                total += hi[at] - lo[at]
    cand = np.empty(total, dtype=np.int64)
    owner = np.empty(total, dtype=np.int64)
    c = 0
    for at in range(k * per_query):
        for j in range(lo[at], hi[at]):
            cand[c] = order[j]
            owner[c] = at // per_query
            c += 1
    return _verify(words, alive, cand, owner, queries, radius)


def _verify(words: Any, alive: Any, cand: Any, owner: Any, queries: Any, radius: int) -> Any:
    """The candidates within ``radius`` of their query, with their distances."""
    limit = np.uint64(radius)  # distances stay uint64: mixing with int64 would make floats
    keep = np.empty(cand.shape[0], dtype=np.bool_)
    dist = np.empty(cand.shape[0], dtype=np.int64)
    for c in range(cand.shape[0]):
        p, q = cand[c], queries[owner[c]]
        d = np.uint64(0)
        for w in range(words.shape[1]):
            d += _popcount64(words[p, w] ^ q[w])
        keep[c] = d <= limit and alive[p]
        dist[c] = d
    return owner[keep], cand[keep], dist[keep]


if AVAILABLE:
    _popcount64 = numba.njit(inline="always", cache=True)(_popcount64)
    _chunk = numba.njit(inline="always", cache=True)(_chunk)
    _verify = numba.njit(cache=True, nogil=True)(_verify)
    _search = numba.njit(cache=True, nogil=True)(_search)


def search(
    words: np.ndarray,
    alive: np.ndarray,
    order: np.ndarray,
    offsets: np.ndarray,
    bases: np.ndarray,
    plan: tuple[tuple[int, int], ...],
    masks: tuple[np.ndarray, ...],
    queries: np.ndarray,
    radius: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run the compiled search over an index's arrays (``masks``: each table's probe masks)."""
    starts = np.array([s for s, _ in plan], dtype=np.int64)
    widths = np.array([w for _, w in plan], dtype=np.int64)
    mask_at = np.zeros(len(masks) + 1, dtype=np.int64)
    mask_at[1:] = np.cumsum([m.shape[0] for m in masks])
    flat_masks = np.concatenate(masks).astype(np.int64)
    return _search(
        words, alive, order, offsets, bases, starts, widths, flat_masks, mask_at, queries, radius
    )
