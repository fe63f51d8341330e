"""Multi-index hashing: exact Hamming range search that scales to tens of millions of hashes.

Norouzi et al., "Fast Search in Hamming Space with Multi-Index Hashing" (CVPR 2012). Every hash
is cut into ``m`` substrings and each substring position gets a bucket table: a CSR array of
positions sorted by substring value. Pigeonhole: if ``dist(q, h) <= r`` then some substring of
``h`` is within its table's radius of the same substring of ``q`` (:func:`table_radii`), so
probing every bucket within those radii yields a superset of the answer, which full distances
verify.

For PDQ the substring width follows the index size (:func:`chunk_plan`): about ``log2(n)`` bits,
so a bucket holds about one hash whatever the size (for 10 million PDQ hashes: 11 substrings of
23-24 bits, a radius-31 query probes about 3,000 buckets and verifies a few thousand candidates;
fixed 16-bit substrings would verify ~40,000). One-word hashes (pHash) keep their words inline in
each table's bucket order and use 4 tables of 16 bits (:data:`SINGLE_WORD_CHUNK_BITS`). Queries
are answered in batches (:meth:`search_many`): all hashes of one query image (dihedral variants,
partial images) in one call of the compiled loop (:mod:`karung.vision.mih_kernel`), or of a few
NumPy calls where numba is missing.

Adds go to a linear buffer merged into the tables when it exceeds 1/16 of the index (amortised
rebuild, with a plan for the new size); removals are tombstones compacted at 25%, so replicas
follow a changing bank without rebuilding.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Sequence
from typing import Final

import numpy as np

from karung.vision import mih_kernel
from karung.vision.hash_index import (
    HashIndexError,
    Hit,
    LinearIndex,
    as_ids,
    check_radius,
    check_words,
    popcount_rows,
    query_words,
    sorted_hits,
)
from karung.vision.hashing import HashValue

MIN_CHUNK_BITS: Final = 16
MAX_CHUNK_BITS: Final = 24  # a 24-bit table's offsets take 64 MiB; wider ones are not worth it
# One-word hashes (pHash) are read in bucket order (the tables hold them inline), so a candidate
# costs a sequential read and a probe a cache miss: fewer, larger buckets win. At 10 million
# pHashes, 16 partial pHashes at radius 10: 4 tables of 16 bits 2.2-2.5 ms of CPU, 3 tables of
# 21-22 bits (the log2(n) rule) 3.8-4.1 ms; one pHash at 14: 0.8 against 1.6 ms.
SINGLE_WORD_CHUNK_BITS: Final = 16
# A query image's searches among indexes at least this large are shared between two cores
# (karung.vision.together): at 10 million entries they are memory latency, and a second core
# doubles the misses in flight; below it the hand-over (about 0.1 ms) costs more than it saves.
PARALLEL_MIN_SIZE: Final = 1 << 18
# Rough costs of a probe and a candidate at 10 million entries, for splitting a query image's
# searches evenly before an index has timed its own (MultiIndexHashing.cost); only the ratios
# matter, and the measured moving averages replace them after the first searches.
_NS_PROBE: Final = 10.0
_NS_CANDIDATE: Final = 30.0
_NS_INLINE_CANDIDATE: Final = 1.2

# (query row, id, distance) of every hit of a batched search
Found = tuple[np.ndarray, np.ndarray, np.ndarray]
# A search that would verify more than this fraction of the index is cheaper as a linear scan.
_LINEAR_FALLBACK_FRACTION: Final = 0.25


def chunk_plan(nbits: int, n: int, width: int | None = None) -> tuple[tuple[int, int], ...]:
    """``(first bit, width)`` of each substring for an index of ``n`` hashes of ``nbits`` bits.

    Widths are about ``log2(n)`` (so buckets hold about one hash), between
    :data:`MIN_CHUNK_BITS` and :data:`MAX_CHUNK_BITS`, as equal as the bit count allows, except
    for one-word hashes (:data:`SINGLE_WORD_CHUNK_BITS`);
    ``width`` overrides the size rule (tests use it to reach wide tables with small data).
    """
    if width is None and nbits == 64:
        width = SINGLE_WORD_CHUNK_BITS
    if width is None:
        width = min(MAX_CHUNK_BITS, max(MIN_CHUNK_BITS, round(math.log2(max(n, 2)))))
    if not 1 <= width <= MAX_CHUNK_BITS:
        raise HashIndexError(f"substring width must be within 1..{MAX_CHUNK_BITS}, got {width}")
    m = max(1, round(nbits / width))
    while nbits / m > MAX_CHUNK_BITS:
        m += 1
    base, extra = divmod(nbits, m)
    plan, start = [], 0
    for i in range(m):
        w = base + (1 if i < extra else 0)
        plan.append((start, w))
        start += w
    return tuple(plan)


def chunk_values(words: np.ndarray, start: int, width: int) -> np.ndarray:
    """Bits ``start .. start + width`` of each row (bit ``b`` is bit ``b % 64`` of word
    ``b // 64``), as int64."""
    col, off = divmod(start, 64)
    mask = np.uint64((1 << width) - 1)
    values = words[:, col] >> np.uint64(off)
    if off + width > 64:
        values = values | (words[:, col + 1] << np.uint64(64 - off))
    return (values & mask).astype(np.int64)


def table_radii(radius: int, m: int) -> tuple[int, ...]:
    """How far to probe in each of ``m`` tables so that no hash within ``radius`` is missed.

    Generalised pigeonhole: if every substring were at least ``r_i + 1`` away, the whole hash
    would be at least ``sum(r_i) + m`` away, so ``sum(r_i) >= radius - m + 1`` suffices. That is
    ``radius // m`` in some tables and one less in others (for a pHash at radius 10 in 4 tables:
    2, 2, 2, 1 instead of 2, 2, 2, 2; in 3 tables 3, 3, 2, a third fewer probes). The narrower
    (last) tables get the smaller radii; a negative need means an exact substring match in one
    table suffices.
    """
    need = max(0, radius - m + 1)
    base, extra = divmod(need, m)
    return tuple(base + (1 if i < extra else 0) for i in range(m))


@functools.cache
def probe_masks(width: int, radius: int) -> np.ndarray:
    """Every ``width``-bit XOR mask of at most ``radius`` set bits (the buckets to probe)."""
    masks = [0]
    for k in range(1, min(radius, width) + 1):
        masks += _masks_with(width, k)
    return np.array(masks, dtype=np.int64)


@functools.cache
def table_masks(plan: tuple[tuple[int, int], ...], r: int) -> tuple[np.ndarray, ...]:
    """Each table's probe masks for a search at radius ``r`` (:func:`table_radii`)."""
    radii = table_radii(r, len(plan))
    return tuple(probe_masks(width, sub) for (_, width), sub in zip(plan, radii, strict=True))


@functools.cache
def probe_plan(plan: tuple[tuple[int, int], ...], r: int) -> mih_kernel.ProbePlan:
    """The compiled loop's arrays for a search at radius ``r`` (built once per plan and
    radius: a query image's searches would otherwise rebuild them every time)."""
    return mih_kernel.ProbePlan.of(plan, table_masks(plan, r))


def _masks_with(width: int, k: int) -> list[int]:
    from itertools import combinations

    return [sum(1 << b for b in bits) for bits in combinations(range(width), k)]


class MultiIndexHashing:
    """Fast exact range search (see the module docstring); same answers as
    :class:`~karung.vision.hash_index.LinearIndex`, in the same order.

    Memory per hash: ``nbits / 8`` bytes of words, 8 of id, 1 of tombstone and 4 per substring
    table (12 for one-word hashes: their words are kept inline too), plus ``4 * 2**width`` bytes
    of offsets per table (for PDQ at 10 million hashes: 93 bytes a hash and about 470 MiB of
    offsets; for pHash 65 bytes a hash and 1 MiB of offsets).
    """

    def __init__(
        self,
        nbits: int,
        *,
        merge_at: int = 4096,
        merge_fraction: float = 1 / 16,
        chunk_bits: int | None = None,
        compiled: bool = True,
        parallel_from: int = PARALLEL_MIN_SIZE,
    ) -> None:
        if nbits <= 0 or nbits % 64:
            raise HashIndexError(f"nbits must be a positive multiple of 64, got {nbits}")
        self.nbits = nbits
        self._chunk_bits = chunk_bits
        # The compiled search (mih_kernel) when numba is there; tests turn it off to hold the
        # NumPy path to the same contract.
        self.compiled = compiled and mih_kernel.AVAILABLE
        # From this many hashes a query image's searches may share two cores (search_together;
        # tests lower it to 0).
        self._parallel_from = parallel_from
        self._merge_at = merge_at
        self._merge_fraction = merge_fraction
        self._pending = LinearIndex(nbits)
        self._set_base(np.zeros(0, dtype=np.int64), np.zeros((0, nbits // 64), dtype=np.uint64))

    @classmethod
    def build(
        cls,
        ids: Sequence[int] | np.ndarray,
        hashes: np.ndarray,
        nbits: int,
        *,
        chunk_bits: int | None = None,
        compiled: bool = True,
        parallel_from: int = PARALLEL_MIN_SIZE,
    ) -> MultiIndexHashing:
        """An index holding ``hashes`` under ``ids``, tables built in one go (``chunk_bits``
        fixes the substring width instead of deriving it from the size; ``compiled`` False
        keeps to the NumPy search)."""
        index = cls(nbits, chunk_bits=chunk_bits, compiled=compiled, parallel_from=parallel_from)
        words = check_words(hashes, nbits)
        index._set_base(as_ids(ids, words.shape[0]), words)
        return index

    @property
    def plan(self) -> tuple[tuple[int, int], ...]:
        """The substrings of the current tables (see :func:`chunk_plan`)."""
        return self._plan

    def add(self, ids: Sequence[int] | np.ndarray, hashes: np.ndarray) -> None:
        """Add hashes under new ids; they are searchable at once (merged into the tables later)."""
        words = check_words(hashes, self.nbits)
        new_ids = as_ids(ids, words.shape[0])
        if self._base_positions(new_ids).size:
            raise HashIndexError("id already in the index")
        self._pending.add(new_ids, words)
        if len(self._pending) > max(self._merge_at, self._merge_fraction * len(self._ids)):
            self._merge()

    def remove(self, id_: int) -> None:
        """Forget ``id_``: a tombstone in the tables, compacted once a quarter is dead."""
        pos = self._base_positions(np.array([id_], dtype=np.int64))
        if pos.size == 0:
            self._pending.remove(id_)
            return
        self._alive[pos[0]] = False
        self._dead += 1
        if self._dead > len(self._ids) // 4:
            self._merge()

    def search(self, query: np.ndarray | HashValue, radius: int) -> list[Hit]:
        """Every stored hash within ``radius`` of ``query``, sorted by distance then id."""
        q = query_words(query, self.nbits).reshape(1, -1)
        _which, ids, dists = self.search_many(q, radius)
        return sorted_hits(ids, dists)

    def search_many(
        self, queries: np.ndarray, radius: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every (query row, id, distance) within ``radius``, for a batch of query hashes.

        Unordered; each (query, id) pair appears once. ``queries`` is ``(k, nbits // 64)``.
        """
        start = time.perf_counter_ns()
        qs = check_words(queries, self.nbits)
        r = check_radius(radius, self.nbits)
        if self.compiled and not self._scan_is_cheaper(r):
            which, pos, dists = self._compiled_search(qs, r)
        else:
            which, pos = self._candidates(qs, r)
            dists = _row_distances(self._words, pos, qs, which)
            keep = dists <= r  # almost every candidate goes here, before any other pass
            which, pos, dists = which[keep], pos[keep], dists[keep]
            live = self._alive[pos]
            which, pos, dists = which[live], pos[live], dists[live]
        pair = which * max(1, self._ids.shape[0]) + pos  # a hash found through several tables
        _, first = np.unique(pair, return_index=True)
        which, ids, dists = which[first], self._ids[pos[first]], dists[first]
        if len(self._pending):
            extra = _pending_hits(self._pending, qs, r)
            which = np.concatenate([which, extra[0]])
            ids = np.concatenate([ids, extra[1]])
            dists = np.concatenate([dists, extra[2]])
        if self.compiled:  # the whole call, its fixed costs spread over its query hashes
            self._observe(r, (time.perf_counter_ns() - start) / max(1, qs.shape[0]))
        return which, ids, dists

    def get(self, id_: int) -> np.ndarray | None:
        """The words stored under ``id_``, or None."""
        pos = self._base_positions(np.array([id_], dtype=np.int64))
        if pos.size:
            return self._words[pos[0]].copy()
        return self._pending.get(id_)

    def nbytes(self) -> int:
        """Bytes held by the arrays (tables, words, ids, tombstones, pending buffer)."""
        arrays = (self._ids, self._words, self._alive, self._order, self._offsets, self._inline)
        return int(sum(a.nbytes for a in arrays) + self._pending.nbytes())

    def __len__(self) -> int:
        return int(self._ids.shape[0] - self._dead + len(self._pending))

    def _compiled_search(self, qs: np.ndarray, r: int) -> Found:
        return mih_kernel.search(
            self._words, self._alive, self._order, self._offsets, self._bases,
            probe_plan(self._plan, r), qs, r, self._inline,
        )  # fmt: skip

    def cost(self, radius: int) -> float:
        """Nanoseconds one query hash costs at ``radius``, for sharing a query image's searches
        between cores (:mod:`karung.vision.together`; 0 below the size worth it): the moving
        average of what the compiled searches took, or before any, an estimate (a probe is a
        random read, a candidate one or two more unless its table keeps it inline)."""
        n = self._ids.shape[0]
        if n < self._parallel_from or not self.compiled:
            return 0.0
        if radius in self._cost_ns:
            return self._cost_ns[radius]
        probes = probe_plan(self._plan, radius).per_query
        candidates = probes * n / (1 << self._plan[0][1])
        per_candidate = _NS_INLINE_CANDIDATE if self._inline.shape[0] else _NS_CANDIDATE
        return probes * _NS_PROBE + candidates * per_candidate

    def _observe(self, r: int, ns_per_row: float) -> None:
        """Fold one search's time per query hash into :meth:`cost` (races between threads
        lose an observation at worst)."""
        before = self._cost_ns.get(r)
        self._cost_ns[r] = ns_per_row if before is None else before + 0.1 * (ns_per_row - before)

    def _masks(self, r: int) -> tuple[np.ndarray, ...]:
        """Each table's probe masks (:func:`table_radii`)."""
        return table_masks(self._plan, r)

    def _scan_is_cheaper(self, r: int) -> bool:
        """Whether the probes would visit more than a quarter of the index (or it is empty)."""
        n = self._ids.shape[0]
        per_query = probe_plan(self._plan, r).per_query
        return n == 0 or per_query * n / (1 << self._plan[0][1]) > _LINEAR_FALLBACK_FRACTION * n

    def _candidates(self, qs: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
        """(query row, position) pairs, with repeats, sharing a substring within its table's
        radius (:func:`table_radii`): the NumPy path (the compiled one is :mod:`mih_kernel`).

        Every table's buckets live in one flat offsets array (table ``c`` starts at
        ``self._bases[c]`` and its offsets already point into the flat order array), so the
        probes of all tables and all queries cost a handful of NumPy calls.
        """
        n, k = self._ids.shape[0], qs.shape[0]
        keys = [
            (chunk_values(qs, bit, width)[:, None] ^ masks[None, :]) + int(base)
            for (bit, width), base, masks in zip(
                self._plan, self._bases, self._masks(r), strict=True
            )
        ]
        per_query = sum(key.shape[1] for key in keys)
        if self._scan_is_cheaper(r):
            which = np.repeat(np.arange(k, dtype=np.int64), n)  # a scan is cheaper
            return which, np.tile(np.arange(n, dtype=np.int64), k)
        flat_keys = np.concatenate(keys, axis=1).ravel()  # (k, probes) row-major
        start = np.take(self._offsets, flat_keys)
        length = np.take(self._offsets, flat_keys + 1) - start
        hit = np.flatnonzero(length)
        start, length = start[hit].astype(np.int64), length[hit].astype(np.int64)
        ends = np.cumsum(length)
        total = int(ends[-1]) if ends.size else 0
        flat = np.arange(total, dtype=np.int64) + np.repeat(start - (ends - length), length)
        owner = np.repeat(hit // per_query, length)
        return owner, np.take(self._order, flat).astype(np.int64)

    def _base_positions(self, ids: np.ndarray) -> np.ndarray:
        """Positions of the live base entries holding ``ids`` (ids not there are skipped)."""
        pos = np.searchsorted(self._ids, ids)
        pos = pos[pos < self._ids.shape[0]]
        found = pos[np.isin(self._ids[pos], ids)]
        return found[self._alive[found]]

    def _merge(self) -> None:
        ids = np.concatenate([self._ids[self._alive], self._pending.ids_array()])
        words = np.concatenate([self._words[self._alive], self._pending.words_array()])
        self._pending = LinearIndex(self.nbits)
        self._set_base(ids, words)

    def _set_base(self, ids: np.ndarray, words: np.ndarray) -> None:
        by_id = np.argsort(ids, kind="stable")
        self._ids = np.ascontiguousarray(ids[by_id])
        self._words = np.ascontiguousarray(words[by_id])
        self._alive = np.ones(self._ids.shape[0], dtype=bool)
        self._dead = 0
        self._plan = chunk_plan(self.nbits, self._ids.shape[0], self._chunk_bits)
        self._cost_ns: dict[int, float] = {}  # radius -> ns per query hash (see cost)
        self._order, self._offsets, self._bases = _build_tables(self._words, self._plan)
        # One-word hashes (pHash) are also kept in each table's bucket order, so a probe reads
        # its candidates in one sweep (8 bytes a hash per table; see mih_kernel).
        single = self.nbits == 64 and self.compiled
        self._inline = self._words[self._order, 0] if single else np.zeros(0, dtype=np.uint64)


def _build_tables(
    words: np.ndarray, plan: tuple[tuple[int, int], ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions sorted by substring value, table after table (one flat array); the CSR bucket
    offsets of every table in one flat array, pointing into it; and where each table's
    offsets start. int32 while the flat arrays stay below 2**31 entries."""
    n = words.shape[0]
    index_type = np.int32 if len(plan) * n < 2**31 else np.int64
    order = np.empty(len(plan) * n, dtype=index_type)
    bases = np.zeros(len(plan), dtype=np.int64)
    offsets = np.zeros(sum((1 << w) + 1 for _, w in plan), dtype=index_type)
    at = 0
    for c, (bit, width) in enumerate(plan):
        keys = chunk_values(words, bit, width)
        order[c * n : (c + 1) * n] = np.argsort(keys, kind="stable")
        bases[c] = at
        counts = np.bincount(keys, minlength=1 << width)
        offsets[at] = c * n
        offsets[at + 1 : at + (1 << width) + 1] = np.cumsum(counts) + c * n
        at += (1 << width) + 1
    return order, offsets, bases


def _row_distances(
    words: np.ndarray, pos: np.ndarray, qs: np.ndarray, which: np.ndarray
) -> np.ndarray:
    """Hamming distance from ``qs[which[i]]`` to ``words[pos[i]]`` for every i."""
    picked = np.take(words, pos, axis=0)
    picked ^= np.take(qs, which, axis=0)
    return popcount_rows(picked)


def _pending_hits(
    pending: LinearIndex, qs: np.ndarray, r: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query row, id, distance) of the pending buffer's hashes within ``r`` (brute force)."""
    words, ids = pending.words_array(), pending.ids_array()
    pairs = words[None, :, :] ^ qs[:, None, :]
    dists = popcount_rows(pairs.reshape(-1, qs.shape[1])).reshape(qs.shape[0], -1)
    which, pos = np.nonzero(dists <= r)
    return which.astype(np.int64), ids[pos], dists[which, pos]
