"""Exact Hamming range search over fixed-width binary hashes (PDQ 256 bits, pHash 64 bits).

Two implementations of one :class:`HashIndex` protocol, both exact (same results, same order):

* :class:`LinearIndex`: the reference. XOR every stored hash with the query and popcount.
* :class:`MultiIndexHashing`: the fast index (Norouzi et al., "Fast Search in Hamming Space with
  Multi-Index Hashing", CVPR 2012). Each hash is cut into ``m`` 16-bit substrings and every
  substring position gets a bucket table (a CSR array of positions sorted by substring value).
  Pigeonhole: if ``dist(q, h) <= r`` then at least one substring of ``h`` is within
  ``r // m`` of the same substring of ``q``; so probing every bucket within ``r // m`` of each
  query substring yields a candidate superset, which is then verified with full distances.
  For PDQ at radius 31 that is 16 tables x 17 probes, a few thousand candidates out of millions.

Hashes travel as 2-D ``uint64`` arrays of big-endian words (:func:`words_of`), one row per hash.
Adds go to a small linear buffer and are merged into the tables when it grows (amortised
rebuild), removals are tombstones, so replicas can follow a changing bank without a full rebuild.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final, Protocol, runtime_checkable

import numpy as np

from karung.vision.errors import KarungVisionError
from karung.vision.hashing import HashValue

CHUNK_BITS: Final = 16
_CHUNK_VALUES: Final = 1 << CHUNK_BITS
# A search that would visit more than this fraction of the index is cheaper as a linear scan.
_LINEAR_FALLBACK_FRACTION: Final = 0.25

Hit = tuple[int, int]  # (id, distance)


class HashIndexError(KarungVisionError, ValueError):
    """Invalid use of an index: wrong hash width, duplicate or unknown id, bad radius."""

    code = "hash_index_error"


@runtime_checkable
class HashIndex(Protocol):
    """An exact Hamming range index over hashes of one width."""

    nbits: int

    def add(self, ids: Sequence[int] | np.ndarray, hashes: np.ndarray) -> None:
        """Add hashes (``(n, nbits // 64)`` uint64 words) under unique integer ids."""
        ...

    def remove(self, id_: int) -> None:
        """Forget the hash stored under ``id_`` (raises when unknown)."""
        ...

    def search(self, query: np.ndarray | HashValue, radius: int) -> list[Hit]:
        """``(id, distance)`` of every hash within ``radius``, sorted by distance then id."""
        ...

    def __len__(self) -> int: ...


def words_of(hashes: Iterable[HashValue]) -> np.ndarray:
    """Stack hash values into the ``(n, nbits // 64)`` uint64 layout the indexes use."""
    values = list(hashes)
    if not values:
        raise HashIndexError("no hashes given")
    width = values[0].nbits
    if any(v.nbits != width for v in values):
        raise HashIndexError("hashes of different widths cannot share an index")
    raw = b"".join(v.bits for v in values)
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64).reshape(len(values), width // 64)


def popcount_rows(words: np.ndarray) -> np.ndarray:
    """Number of set bits of each row of a 2-D uint64 array (as int64)."""
    counts = np.bitwise_count(words)
    # Adding the few columns beats a reduction along a short axis by about 3x.
    total = counts[:, 0].astype(np.int64)
    for col in range(1, counts.shape[1]):
        total += counts[:, col]
    return total


def distances_at(words: np.ndarray, positions: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Hamming distances from ``query`` to ``words[positions]``."""
    picked = np.take(words, positions, axis=0)  # take() gathers rows faster than fancy indexing
    picked ^= query
    return popcount_rows(picked)


def _check_words(hashes: np.ndarray, nbits: int) -> np.ndarray:
    arr = np.asarray(hashes)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.dtype != np.uint64 or arr.ndim != 2 or arr.shape[1] * 64 != nbits:
        raise HashIndexError(
            f"expected uint64 words of shape (n, {nbits // 64}), got {arr.dtype} {arr.shape}"
        )
    return np.ascontiguousarray(arr)


def _query_words(query: np.ndarray | HashValue, nbits: int) -> np.ndarray:
    if isinstance(query, HashValue):
        if query.nbits != nbits:
            raise HashIndexError(
                f"a {query.nbits}-bit {query.kind} hash cannot query a {nbits}-bit index"
            )
        return query.to_words()
    return _check_words(query, nbits)[0]


def _check_radius(radius: int, nbits: int) -> int:
    if isinstance(radius, bool) or not isinstance(radius, int | np.integer):
        raise HashIndexError(f"radius must be an integer, got {radius!r}")
    if not 0 <= int(radius) <= nbits:
        raise HashIndexError(f"radius must be within 0..{nbits}, got {radius}")
    return int(radius)


def _as_ids(ids: Sequence[int] | np.ndarray, n: int) -> np.ndarray:
    arr = np.asarray(ids, dtype=np.int64).reshape(-1)
    if arr.shape[0] != n:
        raise HashIndexError(f"{arr.shape[0]} ids for {n} hashes")
    if np.unique(arr).shape[0] != n:
        raise HashIndexError("ids must be unique")
    return arr


def _sorted_hits(ids: np.ndarray, dists: np.ndarray) -> list[Hit]:
    order = np.lexsort((ids, dists))
    return [(int(ids[i]), int(dists[i])) for i in order]


class LinearIndex:
    """Brute force: the reference implementation every faster index is tested against."""

    def __init__(self, nbits: int) -> None:
        if nbits <= 0 or nbits % 64:
            raise HashIndexError(f"nbits must be a positive multiple of 64, got {nbits}")
        self.nbits = nbits
        self._words = np.zeros((0, nbits // 64), dtype=np.uint64)
        self._ids = np.zeros(0, dtype=np.int64)
        self._blocks: list[tuple[np.ndarray, np.ndarray]] = []

    def add(self, ids: Sequence[int] | np.ndarray, hashes: np.ndarray) -> None:
        """Append hashes; ids must be new."""
        words = _check_words(hashes, self.nbits)
        new_ids = _as_ids(ids, words.shape[0])
        if np.isin(new_ids, self.ids_array()).any():
            raise HashIndexError("id already in the index")
        self._blocks.append((new_ids, words.copy()))

    def remove(self, id_: int) -> None:
        """Drop the hash stored under ``id_``."""
        self._consolidate()
        where = np.flatnonzero(self._ids == id_)
        if where.size == 0:
            raise HashIndexError(f"id {id_} is not in the index")
        self._ids = np.delete(self._ids, where)
        self._words = np.delete(self._words, where, axis=0)

    def search(self, query: np.ndarray | HashValue, radius: int) -> list[Hit]:
        """Every stored hash within ``radius`` of ``query``."""
        q = _query_words(query, self.nbits)
        r = _check_radius(radius, self.nbits)
        self._consolidate()
        dists = popcount_rows(self._words ^ q)
        keep = dists <= r
        return _sorted_hits(self._ids[keep], dists[keep])

    def get(self, id_: int) -> np.ndarray | None:
        """The words stored under ``id_``, or None."""
        self._consolidate()
        where = np.flatnonzero(self._ids == id_)
        return self._words[where[0]].copy() if where.size else None

    def ids_array(self) -> np.ndarray:
        """Every stored id (unordered)."""
        self._consolidate()
        return self._ids

    def words_array(self) -> np.ndarray:
        """Every stored hash, aligned with :meth:`ids_array`."""
        self._consolidate()
        return self._words

    def nbytes(self) -> int:
        """Bytes held by the arrays."""
        self._consolidate()
        return int(self._words.nbytes + self._ids.nbytes)

    def __len__(self) -> int:
        return int(self._ids.shape[0] + sum(b[0].shape[0] for b in self._blocks))

    def _consolidate(self) -> None:
        if self._blocks:
            self._ids = np.concatenate([self._ids, *(b[0] for b in self._blocks)])
            self._words = np.concatenate([self._words, *(b[1] for b in self._blocks)])
            self._blocks = []


class MultiIndexHashing:
    """Fast exact range search by multi-index hashing (see the module docstring).

    Memory per hash: ``nbits / 8`` bytes of words, 8 of id, 1 of tombstone and 4 per 16-bit
    substring table (``nbits / 16`` tables): 109 bytes for PDQ, plus 0.5 MB per table of offsets.
    """

    def __init__(self, nbits: int, *, merge_at: int = 4096, merge_fraction: float = 1 / 16) -> None:
        if nbits <= 0 or nbits % 64:
            raise HashIndexError(f"nbits must be a positive multiple of 64, got {nbits}")
        self.nbits = nbits
        self.m = nbits // CHUNK_BITS
        self._merge_at = merge_at
        self._merge_fraction = merge_fraction
        self._pending = LinearIndex(nbits)
        self._set_base(np.zeros(0, dtype=np.int64), np.zeros((0, nbits // 64), dtype=np.uint64))

    @classmethod
    def build(
        cls, ids: Sequence[int] | np.ndarray, hashes: np.ndarray, nbits: int
    ) -> MultiIndexHashing:
        """An index holding ``hashes`` under ``ids``, tables built in one go."""
        index = cls(nbits)
        words = _check_words(hashes, nbits)
        index._set_base(_as_ids(ids, words.shape[0]), words)
        return index

    def add(self, ids: Sequence[int] | np.ndarray, hashes: np.ndarray) -> None:
        """Add hashes under new ids; they are searchable at once (merged into the tables later)."""
        words = _check_words(hashes, self.nbits)
        new_ids = _as_ids(ids, words.shape[0])
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
        q = _query_words(query, self.nbits)
        r = _check_radius(radius, self.nbits)
        pos = self._candidates(q, r)
        dists = distances_at(self._words, pos, q)
        near = dists <= r
        pos, dists = pos[near], dists[near]
        live = self._alive[pos]
        pos, first = np.unique(pos[live], return_index=True)  # a hash found via several tables
        ids, dists = self._ids[pos], dists[live][first]
        if len(self._pending):
            extra = self._pending.search(q, r)
            if extra:
                ids = np.concatenate([ids, np.array([h[0] for h in extra], dtype=np.int64)])
                dists = np.concatenate([dists, np.array([h[1] for h in extra], dtype=np.int64)])
        return _sorted_hits(ids, dists)

    def get(self, id_: int) -> np.ndarray | None:
        """The words stored under ``id_``, or None."""
        pos = self._base_positions(np.array([id_], dtype=np.int64))
        if pos.size:
            return self._words[pos[0]].copy()
        return self._pending.get(id_)

    def nbytes(self) -> int:
        """Bytes held by the arrays (tables, words, ids, tombstones, pending buffer)."""
        arrays = (self._ids, self._words, self._alive, self._order, self._offsets)
        return int(sum(a.nbytes for a in arrays) + self._pending.nbytes())

    def __len__(self) -> int:
        return int(self._ids.shape[0] - self._dead + len(self._pending))

    def _candidates(self, q: np.ndarray, r: int) -> np.ndarray:
        """Positions (with repeats) whose hash shares a substring within ``r // m`` of ``q``'s."""
        n = self._ids.shape[0]
        masks = _probe_masks(r // self.m)
        if n == 0 or self.m * masks.size * n / _CHUNK_VALUES > _LINEAR_FALLBACK_FRACTION * n:
            return np.arange(n, dtype=np.int64)  # so many probes that a scan is cheaper
        keys = (_chunks(q.reshape(1, -1))[0][:, None] ^ masks[None, :]).astype(np.int64)
        keys += np.arange(self.m, dtype=np.int64)[:, None] * (_CHUNK_VALUES + 1)
        offsets = self._offsets.ravel()
        starts = np.take(offsets, keys.ravel())
        lengths = np.take(offsets, keys.ravel() + 1) - starts
        starts += np.repeat(np.arange(self.m, dtype=np.int64) * n, masks.size)
        nonzero = lengths > 0
        starts, lengths = starts[nonzero], lengths[nonzero]
        # Concatenate the ranges [start, start + length) without a Python loop.
        ends = np.cumsum(lengths)
        flat = np.arange(int(ends[-1]) if ends.size else 0, dtype=np.int64)
        flat += np.repeat(starts - (ends - lengths), lengths)
        return np.take(self._order.ravel(), flat).astype(np.int64)

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
        self._order, self._offsets = _build_tables(self._words, self.m)


def _chunks(words: np.ndarray) -> np.ndarray:
    """The 16-bit substrings of each row, ``(n, m)`` uint16 (a view: same layout for queries)."""
    return np.ascontiguousarray(words).view(np.uint16)


def _build_tables(words: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Per substring position: positions sorted by substring value, and CSR bucket offsets."""
    n = words.shape[0]
    order = np.empty((m, n), dtype=np.int32)
    offsets = np.zeros((m, _CHUNK_VALUES + 1), dtype=np.int64)
    chunks = _chunks(words)
    for c in range(m):
        keys = np.ascontiguousarray(chunks[:, c])
        order[c] = np.argsort(keys, kind="stable")
        np.cumsum(np.bincount(keys, minlength=_CHUNK_VALUES), out=offsets[c, 1:])
    return order, offsets


_MASKS: dict[int, np.ndarray] = {}


def _probe_masks(radius: int) -> np.ndarray:
    """Every 16-bit XOR mask of at most ``radius`` set bits (the buckets to probe), cached."""
    radius = min(radius, CHUNK_BITS)
    if radius not in _MASKS:
        values = np.arange(_CHUNK_VALUES, dtype=np.uint32)
        _MASKS[radius] = values[np.bitwise_count(values) <= radius].astype(np.uint16)
    return _MASKS[radius]
