"""The compiled inner loop of multi-index hashing (numba): probe buckets, verify candidates.

NumPy pays 20-40 ns per probe or candidate (every step of a search is another pass over
temporary arrays); this loop pays a few. With 10 million entries one query image (8 dihedral
PDQ hashes, a pHash with the far band, 16 partial pHashes) is tens of thousands of probes into
hundreds of megabytes of tables and about a million candidates, so the time is memory latency:
each pass below names the cache lines it will need a few steps ahead (``prefetch``), so that
many misses are in flight at once instead of one (docs/HASHING.md, "Index"). The answers are
the NumPy path's (a contract test holds every index to the brute-force one); :data:`AVAILABLE`
is False where numba cannot be imported, and the NumPy path runs instead.
"""

from __future__ import annotations

import threading
from typing import Any, Final, NamedTuple

import numpy as np

try:  # numba is a dependency; the NumPy path keeps the index working without it
    import numba
    from llvmlite import binding as _llvm
    from llvmlite import ir as _ir
    from numba import types as _types
    from numba.core import cgutils as _cgutils
    from numba.extending import intrinsic as _intrinsic

    AVAILABLE = True
except ImportError:  # pragma: no cover - exercised only where numba is missing
    AVAILABLE = False

# How far ahead each pass names the lines it will need (probes, buckets, candidates). Measured
# at 10 million entries on the 2-core machine (docs/HASHING.md): shorter leaves misses waiting,
# longer evicts lines before they are used.
BOUNDS_AHEAD: Final = 32
GATHER_AHEAD: Final = 8
VERIFY_AHEAD: Final = 16
SCAN_AHEAD: Final = 4  # buckets of one-word hashes (whole buckets, each ~150 candidates)


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


def _prefetch(array: Any, index: int) -> None:
    """Ask for the cache line of ``array[index]`` without waiting (compiled: one instruction)."""


def _probe_keys(
    bases: Any, starts: Any, widths: Any, masks: Any, mask_at: Any, queries: Any, keys: Any
) -> None:
    """The flat-offsets key of every probe, query after query, table after table, into
    ``keys``."""
    k, n_tables = queries.shape[0], starts.shape[0]
    per_query = mask_at[n_tables]
    for row in range(k):
        for table in range(n_tables):
            value = _chunk(queries[row], starts[table], widths[table])
            for m in range(mask_at[table], mask_at[table + 1]):
                keys[row * per_query + m] = bases[table] + (value ^ masks[m])


def _bounds(offsets: Any, keys: Any, lo: Any, hi: Any) -> int:
    """The [lo, hi) range of every probed bucket, into ``lo`` and ``hi``; their total size."""
    n = keys.shape[0]
    total = 0
    for i in range(n):
        if i + BOUNDS_AHEAD < n:
            _prefetch(offsets, keys[i + BOUNDS_AHEAD])
        lo[i] = offsets[keys[i]]
        hi[i] = offsets[keys[i] + 1]
        total += hi[i] - lo[i]
    return total


def _gather(order: Any, lo: Any, hi: Any, per_query: int, cand: Any, owner: Any) -> None:
    """Candidate positions (with repeats) and the query row that probed each, into ``cand``
    and ``owner``."""
    n = lo.shape[0]
    c = 0
    for at in range(n):
        ahead = at + GATHER_AHEAD
        if ahead < n and hi[ahead] > lo[ahead]:
            _prefetch(order, lo[ahead])
        for j in range(lo[at], hi[at]):
            cand[c] = order[j]
            owner[c] = at // per_query
            c += 1


def _verify(
    words: Any, alive: Any, cand: Any, owner: Any, queries: Any, radius: int, dist: Any
) -> int:
    """How many candidates are within ``radius`` of their query; they are moved to the front
    of ``owner``, ``cand`` and ``dist`` (with their distances), in order."""
    limit = np.uint64(radius)  # distances stay uint64: mixing with int64 would make floats
    n = cand.shape[0]
    found = 0
    for c in range(n):
        if c + VERIFY_AHEAD < n:
            _prefetch(words, cand[c + VERIFY_AHEAD])
        p, q = cand[c], queries[owner[c]]
        d = np.uint64(0)
        for w in range(words.shape[1]):
            d += _popcount64(words[p, w] ^ q[w])
        if d <= limit and alive[p]:
            owner[found], cand[found], dist[found] = owner[c], p, d
            found += 1
    return found


def _scan_words(
    alive: Any,
    order: Any,
    inline: Any,
    lo: Any,
    hi: Any,
    per_query: int,
    queries: Any,
    radius: int,
) -> tuple[Any, Any, Any]:
    """The hits of one-word hashes kept whole in each table's bucket order (``inline``): a
    bucket's candidates are read in one sweep, their distances exact."""
    n = lo.shape[0]
    limit = np.uint64(radius)
    empty = np.empty(0, dtype=np.int64)
    which, pos, dist = _grow(empty, empty, empty)
    found = 0
    for at in range(n):
        ahead = at + SCAN_AHEAD
        if ahead < n:
            for j in range(lo[ahead], hi[ahead], 8):  # 8 words a 64-byte line
                _prefetch(inline, j)
        row = at // per_query
        q = queries[row, 0]
        best = np.uint64(64)
        for j in range(lo[at], hi[at]):
            best = min(best, _popcount64(inline[j] ^ q))
        if best > limit:
            continue
        for j in range(lo[at], hi[at]):
            d = _popcount64(inline[j] ^ q)
            if d <= limit and alive[order[j]]:
                if found == which.shape[0]:
                    which, pos, dist = _grow(which, pos, dist)
                which[found], pos[found], dist[found] = row, order[j], d
                found += 1
    return which[:found], pos[:found], dist[:found]


def _grow(which: Any, pos: Any, dist: Any) -> tuple[Any, Any, Any]:
    """The three hit buffers twice as long (at least 64), their contents kept."""
    size = max(64, 2 * which.shape[0])
    out = (np.empty(size, np.int64), np.empty(size, np.int64), np.empty(size, np.int64))
    out[0][: which.shape[0]] = which
    out[1][: pos.shape[0]] = pos
    out[2][: dist.shape[0]] = dist
    return out


if AVAILABLE:
    # LLVM 15 and later name the intrinsic by the opaque pointer type.
    _OPAQUE = _llvm.llvm_version_info[0] >= 15
    _PREFETCH_NAME = "llvm.prefetch.p0" if _OPAQUE else "llvm.prefetch.p0i8"

    @_intrinsic
    def _prefetch_intrinsic(typingctx: Any, array: Any, index: Any) -> Any:
        """``llvm.prefetch`` (read, keep in all cache levels) of ``array[index]``'s address."""
        sig = _types.void(array, index)

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            ary_type = signature.args[0]
            ary = context.make_array(ary_type)(context, builder, args[0])
            index = context.cast(builder, args[1], signature.args[1], _types.intp)
            ptr = _cgutils.get_item_pointer(
                context, builder, ary_type, ary, [index], wraparound=False
            )
            i8p, i32 = _ir.IntType(8).as_pointer(), _ir.IntType(32)
            fn_type = _ir.FunctionType(_ir.VoidType(), [i8p, i32, i32, i32])
            fn = _cgutils.get_or_insert_function(builder.module, fn_type, _PREFETCH_NAME)
            builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
            return context.get_dummy_value()

        return sig, codegen

    _prefetch = _prefetch_intrinsic  # type: ignore[assignment]
    _popcount64 = numba.njit(inline="always", cache=True)(_popcount64)
    _chunk = numba.njit(inline="always", cache=True)(_chunk)
    _probe_keys = numba.njit(cache=True, nogil=True)(_probe_keys)
    _bounds = numba.njit(cache=True, nogil=True)(_bounds)
    _gather = numba.njit(cache=True, nogil=True)(_gather)
    _verify = numba.njit(cache=True, nogil=True)(_verify)
    _grow = numba.njit(cache=True, nogil=True)(_grow)
    _scan_words = numba.njit(cache=True, nogil=True)(_scan_words)


def warm() -> None:
    """Compile (or load from the on-disk cache) both search paths now, so the first query a
    service answers does not pay for it (a few seconds cold, a fraction of one cached)."""
    if not AVAILABLE:
        return
    for width in (1, 4):
        words = np.zeros((1, width), dtype=np.uint64)
        inline = words[:, 0] if width == 1 else np.zeros(0, dtype=np.uint64)
        search(
            words,
            np.ones(1, dtype=np.bool_),
            np.zeros(1, dtype=np.int32),
            np.array([0, 1, 1], dtype=np.int32),
            np.zeros(1, dtype=np.int64),
            ProbePlan.of(((0, 1),), (np.array([0, 1], dtype=np.int64),)),
            words,
            0,
            inline,
        )


class ProbePlan(NamedTuple):
    """Where and how far one search probes, as the compiled loop takes it: each table's first
    bit and width, every table's probe masks in one array and where each table's start."""

    starts: np.ndarray
    widths: np.ndarray
    masks: np.ndarray
    mask_at: np.ndarray

    @classmethod
    def of(cls, plan: tuple[tuple[int, int], ...], masks: tuple[np.ndarray, ...]) -> ProbePlan:
        """From an index's substrings and each table's probe masks."""
        mask_at = np.zeros(len(masks) + 1, dtype=np.int64)
        mask_at[1:] = np.cumsum([m.shape[0] for m in masks])
        return cls(
            np.array([s for s, _ in plan], dtype=np.int64),
            np.array([w for _, w in plan], dtype=np.int64),
            np.concatenate(masks).astype(np.int64),
            mask_at,
        )

    @property
    def per_query(self) -> int:
        """Buckets probed per query hash."""
        return int(self.mask_at[-1])


def search(
    words: np.ndarray,
    alive: np.ndarray,
    order: np.ndarray,
    offsets: np.ndarray,
    bases: np.ndarray,
    probes: ProbePlan,
    queries: np.ndarray,
    radius: int,
    inline: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run the compiled search over an index's arrays (``inline``: the hashes in bucket order
    for one-word hashes, else empty)."""
    scratch = _SCRATCH
    keys, lo, hi = scratch.probes(queries.shape[0] * probes.per_query)
    _probe_keys(bases, probes.starts, probes.widths, probes.masks, probes.mask_at, queries, keys)
    total = _bounds(offsets, keys, lo, hi)
    if inline.shape[0]:
        return _scan_words(alive, order, inline, lo, hi, probes.per_query, queries, radius)
    cand, owner, dist = scratch.candidates(total)
    _gather(order, lo, hi, probes.per_query, cand, owner)
    found = _verify(words, alive, cand, owner, queries, radius, dist)
    return owner[:found].copy(), cand[:found].copy(), dist[:found].copy()


class _Scratch(threading.local):
    """One thread's working arrays, kept between searches and grown when too small: fresh
    ones every search cost page faults, and on the thread of a second core the allocator's
    returning them to the system costs both cores a TLB flush (p99 3.9 -> 2.8 ms at 10
    million entries, docs/HASHING.md)."""

    def __init__(self) -> None:
        self._probe = np.empty((3, 0), dtype=np.int64)
        self._cand = np.empty((3, 0), dtype=np.int64)

    def probes(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Room for ``n`` probe keys and bucket bounds."""
        if self._probe.shape[1] < n:
            self._probe = np.empty((3, 2 * n), dtype=np.int64)
        return self._probe[0, :n], self._probe[1, :n], self._probe[2, :n]

    def candidates(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Room for ``n`` candidates: positions, query rows, distances."""
        if self._cand.shape[1] < n:
            self._cand = np.empty((3, 2 * n), dtype=np.int64)
        return self._cand[0, :n], self._cand[1, :n], self._cand[2, :n]


_SCRATCH = _Scratch()
