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
    inline: Any,
) -> tuple[Any, Any, Any]:
    """(query row, position, distance) of every live stored hash within ``radius`` found
    through some table; a hash found through several tables appears once per table.

    ``inline`` (one-word hashes only; else empty) holds each table's hashes in bucket order:
    a bucket's candidates are then read in one sweep beside its positions, instead of one
    cache miss each in ``words``.

    In three passes (bucket bounds, candidate positions, distances) rather than one nested
    loop: the loads of one pass do not depend on each other, so the processor overlaps their
    cache misses, where the nested loop would wait for each in turn.
    """
    lo, hi, total = _buckets(offsets, bases, starts, widths, masks, mask_at, queries)
    per_query = mask_at[starts.shape[0]]
    if inline.shape[0]:
        return _scan_inline(inline, alive, order, lo, hi, total, per_query, queries, radius)
    cand = np.empty(total, dtype=np.int64)
    owner = np.empty(total, dtype=np.int64)
    c = 0
    for at in range(lo.shape[0]):
        for j in range(lo[at], hi[at]):
            cand[c] = order[j]
            owner[c] = at // per_query
            c += 1
    return _verify(words, alive, cand, owner, queries, radius)


def _buckets(
    offsets: Any, bases: Any, starts: Any, widths: Any, masks: Any, mask_at: Any, queries: Any
) -> tuple[Any, Any, int]:
    """The [lo, hi) ranges of every probed bucket, query after query, and their total size."""
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
    return lo, hi, total


def _scan_inline(
    inline: Any,
    alive: Any,
    order: Any,
    lo: Any,
    hi: Any,
    total: int,
    per_query: int,
    queries: Any,
    radius: int,
) -> tuple[Any, Any, Any]:
    """The hits of one-word hashes stored in bucket order (see :func:`_search`)."""
    limit = np.uint64(radius)
    which = np.empty(total, dtype=np.int64)
    pos = np.empty(total, dtype=np.int64)
    dist = np.empty(total, dtype=np.int64)
    found = 0
    for at in range(lo.shape[0]):
        q = queries[at // per_query, 0]
        for j in range(lo[at], hi[at]):
            d = _popcount64(inline[j] ^ q)
            if d <= limit and alive[order[j]]:
                which[found] = at // per_query
                pos[found] = order[j]
                dist[found] = d
                found += 1
    return which[:found], pos[:found], dist[:found]


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
    _buckets = numba.njit(cache=True, nogil=True)(_buckets)
    _scan_inline = numba.njit(cache=True, nogil=True)(_scan_inline)
    _search = numba.njit(cache=True, nogil=True)(_search)


def warm() -> None:
    """Compile (or load from the on-disk cache) both search paths now, so the first query a
    service answers does not pay for it (a few seconds cold, a fraction of one cached)."""
    if not AVAILABLE:
        return
    words = np.zeros((1, 1), dtype=np.uint64)
    for nbits_words in (words, np.zeros((1, 4), dtype=np.uint64)):
        order = np.zeros(1, dtype=np.int32)
        offsets = np.array([0, 1, 1], dtype=np.int32)
        inline = nbits_words[:, 0] if nbits_words.shape[1] == 1 else np.zeros(0, np.uint64)
        search(
            nbits_words,
            np.ones(1, dtype=np.bool_),
            order,
            offsets,
            np.zeros(1, dtype=np.int64),
            ((0, 1),),
            (np.array([0, 1], dtype=np.int64),),
            nbits_words,
            0,
            inline,
        )


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
    inline: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run the compiled search over an index's arrays (``masks``: each table's probe masks;
    ``inline``: the hashes in bucket order for one-word hashes, else empty)."""
    starts = np.array([s for s, _ in plan], dtype=np.int64)
    widths = np.array([w for _, w in plan], dtype=np.int64)
    mask_at = np.zeros(len(masks) + 1, dtype=np.int64)
    mask_at[1:] = np.cumsum([m.shape[0] for m in masks])
    flat_masks = np.concatenate(masks).astype(np.int64)
    return _search(
        words,
        alive,
        order,
        offsets,
        bases,
        starts,
        widths,
        flat_masks,
        mask_at,
        queries,
        radius,
        inline,
    )
