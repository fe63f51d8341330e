"""Exact Hamming range search over fixed-width binary hashes (PDQ 256 bits, pHash 64 bits).

Two implementations of one :class:`HashIndex` protocol, both exact (same results, same order):

* :class:`LinearIndex`: the reference. XOR every stored hash with the query and popcount.
* :class:`karung.vision.mih.MultiIndexHashing`: the fast index (multi-index hashing with
  substrings sized to the index, batched queries), tested for parity against the reference.

Hashes travel as 2-D ``uint64`` arrays of big-endian words (:func:`words_of`), one row per hash.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from karung.vision.errors import KarungVisionError
from karung.vision.hashing import HashValue

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


def check_words(hashes: np.ndarray, nbits: int) -> np.ndarray:
    arr = np.asarray(hashes)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.dtype != np.uint64 or arr.ndim != 2 or arr.shape[1] * 64 != nbits:
        raise HashIndexError(
            f"expected uint64 words of shape (n, {nbits // 64}), got {arr.dtype} {arr.shape}"
        )
    return np.ascontiguousarray(arr)


def query_words(query: np.ndarray | HashValue, nbits: int) -> np.ndarray:
    if isinstance(query, HashValue):
        if query.nbits != nbits:
            raise HashIndexError(
                f"a {query.nbits}-bit {query.kind} hash cannot query a {nbits}-bit index"
            )
        return query.to_words()
    return check_words(query, nbits)[0]


def check_radius(radius: int, nbits: int) -> int:
    if isinstance(radius, bool) or not isinstance(radius, int | np.integer):
        raise HashIndexError(f"radius must be an integer, got {radius!r}")
    if not 0 <= int(radius) <= nbits:
        raise HashIndexError(f"radius must be within 0..{nbits}, got {radius}")
    return int(radius)


def as_ids(ids: Sequence[int] | np.ndarray, n: int) -> np.ndarray:
    arr = np.asarray(ids, dtype=np.int64).reshape(-1)
    if arr.shape[0] != n:
        raise HashIndexError(f"{arr.shape[0]} ids for {n} hashes")
    if np.unique(arr).shape[0] != n:
        raise HashIndexError("ids must be unique")
    return arr


def sorted_hits(ids: np.ndarray, dists: np.ndarray) -> list[Hit]:
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
        words = check_words(hashes, self.nbits)
        new_ids = as_ids(ids, words.shape[0])
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
        q = query_words(query, self.nbits)
        r = check_radius(radius, self.nbits)
        self._consolidate()
        dists = popcount_rows(self._words ^ q)
        keep = dists <= r
        return sorted_hits(self._ids[keep], dists[keep])

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


class WordStore:
    """Hashes by id, for lookups only (no search): sorted arrays plus a small buffer.

    The matcher keeps the PDQ of each entry's centre crop here: it is only needed to check a
    pHash hit on that crop, so it costs its words and id, not the tables of a search index.
    """

    def __init__(self, nbits: int, *, merge_at: int = 4096) -> None:
        if nbits <= 0 or nbits % 64:
            raise HashIndexError(f"nbits must be a positive multiple of 64, got {nbits}")
        self.nbits = nbits
        self._merge_at = merge_at
        self._ids = np.zeros(0, dtype=np.int64)
        self._words = np.zeros((0, nbits // 64), dtype=np.uint64)
        self._recent: dict[int, np.ndarray] = {}
        self._gone: set[int] = set()

    def add(self, ids: Sequence[int] | np.ndarray, hashes: np.ndarray) -> None:
        """Store hashes under ids (an id already stored is replaced); a large batch goes
        straight into the sorted arrays (one sort, no per-row work)."""
        words = check_words(hashes, self.nbits)
        new_ids = as_ids(ids, words.shape[0])
        if new_ids.shape[0] > self._merge_at:
            self._merge()
            keep = ~np.isin(self._ids, new_ids)
            merged_ids = np.concatenate([self._ids[keep], new_ids])
            order = np.argsort(merged_ids, kind="stable")
            self._ids = merged_ids[order]
            self._words = np.ascontiguousarray(np.concatenate([self._words[keep], words])[order])
            return
        for id_, row in zip(new_ids.tolist(), words, strict=True):
            self._recent[int(id_)] = row.copy()
            if self._in_base(int(id_)):
                self._gone.add(int(id_))  # the buffered row replaces the stored one
        if len(self._recent) > max(self._merge_at, self._ids.shape[0] // 16):
            self._merge()

    def remove(self, id_: int) -> None:
        """Forget ``id_`` (a no-op when it is not stored)."""
        self._recent.pop(int(id_), None)
        if self._in_base(int(id_)):
            self._gone.add(int(id_))

    def get(self, id_: int) -> np.ndarray | None:
        """The words stored under ``id_``, or None."""
        key = int(id_)
        if key in self._recent:
            return self._recent[key]
        if key in self._gone or not self._in_base(key):
            return None
        return self._words[int(np.searchsorted(self._ids, key))]

    def nbytes(self) -> int:
        """Bytes held by the arrays."""
        return int(self._ids.nbytes + self._words.nbytes + len(self._recent) * self.nbits // 8)

    def __len__(self) -> int:
        return int(self._ids.shape[0]) + len(self._recent) - len(self._gone)

    def _in_base(self, key: int) -> bool:
        pos = int(np.searchsorted(self._ids, key))
        return pos < self._ids.shape[0] and int(self._ids[pos]) == key

    def _merge(self) -> None:
        keep = ~np.isin(self._ids, np.array(sorted(self._gone), dtype=np.int64))
        ids = np.concatenate([self._ids[keep], np.array(list(self._recent), dtype=np.int64)])
        extra = list(self._recent.values())
        words = np.concatenate([self._words[keep], *([np.stack(extra)] if extra else [])])
        order = np.argsort(ids, kind="stable")
        self._ids, self._words = ids[order], np.ascontiguousarray(words[order])
        self._recent, self._gone = {}, set()
