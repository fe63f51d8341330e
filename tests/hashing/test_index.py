"""The multi-index-hashing index returns exactly what brute force returns."""

from __future__ import annotations

import numpy as np
import pytest

from karung.vision.hash_index import (
    HashIndex,
    HashIndexError,
    LinearIndex,
    words_of,
)
from karung.vision.hashing import HashValue
from karung.vision.mih import MultiIndexHashing


def flip(words: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """A copy of one hash (a row of uint64 words) with the given bit positions flipped."""
    out = words.copy()
    for bit in bits:
        out[bit // 64] ^= np.uint64(1) << np.uint64(bit % 64)
    return out


def dataset(seed: int, n: int, nbits: int, max_flip: int) -> tuple[np.ndarray, np.ndarray]:
    """Random hashes plus near-duplicates of some of them at every distance 0..max_flip."""
    rng = np.random.default_rng(seed)
    width = nbits // 64
    base = rng.integers(0, 2**64, size=(n, width), dtype=np.uint64)
    near = [
        flip(base[rng.integers(n)], rng.choice(nbits, size=d, replace=False))
        for d in range(max_flip + 1)
        for _ in range(3)
    ]
    words = np.concatenate([base, np.array(near, dtype=np.uint64)])
    ids = rng.permutation(words.shape[0]).astype(np.int64) * 7 + 3  # unordered, sparse ids
    return ids, words


def queries(
    seed: int, words: np.ndarray, nbits: int, max_flip: int, count: int
) -> list[np.ndarray]:
    """Stored hashes with 0..max_flip bits flipped, and a few unrelated random hashes."""
    rng = np.random.default_rng(seed + 1)
    out = [
        flip(
            words[rng.integers(words.shape[0])],
            rng.choice(nbits, size=int(rng.integers(max_flip + 1)), replace=False),
        )
        for _ in range(count)
    ]
    return out + [rng.integers(0, 2**64, size=nbits // 64, dtype=np.uint64) for _ in range(5)]


@pytest.mark.parametrize(
    ("nbits", "radius"),
    [(256, 31), (256, 0), (256, 15), (256, 70), (64, 10), (64, 3), (128, 20)],
)
def test_parity_with_brute_force(nbits: int, radius: int) -> None:
    ids, words = dataset(seed=nbits + radius, n=20_000, nbits=nbits, max_flip=radius + 4)
    fast = MultiIndexHashing.build(ids, words, nbits)
    slow = LinearIndex(nbits)
    slow.add(ids, words)
    assert isinstance(fast, HashIndex) and isinstance(slow, HashIndex)
    assert len(fast) == len(slow) == words.shape[0]
    found_distances: set[int] = set()
    for q in queries(7, words, nbits, radius + 4, 60):
        expected = slow.search(q, radius)
        assert fast.search(q, radius) == expected
        found_distances.update(d for _, d in expected)
    assert max(found_distances) == radius or radius > 60  # hits right up to the radius


def test_brute_force_is_correct_on_a_hand_made_case() -> None:
    index = LinearIndex(64)
    zero = np.zeros((1, 1), dtype=np.uint64)
    index.add([10, 11, 12], np.array([[0], [0b111], [2**64 - 1]], dtype=np.uint64))
    assert index.search(zero, 3) == [(10, 0), (11, 3)]
    assert index.search(zero, 64) == [(10, 0), (11, 3), (12, 64)]


def test_incremental_adds_and_removes_keep_parity() -> None:
    ids, words = dataset(seed=3, n=5_000, nbits=256, max_flip=35)
    fast = MultiIndexHashing(256, merge_at=500)
    slow = LinearIndex(256)
    rng = np.random.default_rng(9)
    for start in range(0, ids.shape[0], 700):  # several merges of the pending buffer
        fast.add(ids[start : start + 700], words[start : start + 700])
        slow.add(ids[start : start + 700], words[start : start + 700])
    for victim in rng.choice(ids, size=1_500, replace=False):  # enough to trigger compaction
        fast.remove(int(victim))
        slow.remove(int(victim))
    assert len(fast) == len(slow) == ids.shape[0] - 1_500
    for q in queries(11, words, 256, 35, 40):
        assert fast.search(q, 31) == slow.search(q, 31)


def test_removed_pending_entries_are_gone() -> None:
    index = MultiIndexHashing(64)
    index.add([1, 2], np.array([[5], [6]], dtype=np.uint64))
    index.remove(2)
    assert index.search(np.array([6], dtype=np.uint64), 0) == []
    assert index.search(np.array([5], dtype=np.uint64), 0) == [(1, 0)]
    assert index.get(1) is not None and int(index.get(1)[0]) == 5  # type: ignore[index]
    assert index.get(2) is None
    built = MultiIndexHashing.build([7], np.array([[9]], dtype=np.uint64), 64)
    assert int(built.get(7)[0]) == 9 and built.get(8) is None  # type: ignore[index]


def test_hash_values_can_be_queried_directly() -> None:
    values = [HashValue("phash", bytes([i]) * 8) for i in range(4)]
    index = MultiIndexHashing.build([0, 1, 2, 3], words_of(values), 64)
    assert index.search(values[1], 0) == [(1, 0)]
    assert [i for i, _ in index.search(values[0], 15)] == [0, 1, 2]  # 0x03 x8 is 16 away


def test_misuse_is_rejected() -> None:
    index = MultiIndexHashing(256)
    good = np.zeros((2, 4), dtype=np.uint64)
    with pytest.raises(HashIndexError, match="shape"):
        index.add([1, 2], np.zeros((2, 2), dtype=np.uint64))
    with pytest.raises(HashIndexError, match="uint64"):
        index.add([1, 2], good.astype(np.int64))
    with pytest.raises(HashIndexError, match="unique"):
        index.add([1, 1], good)
    with pytest.raises(HashIndexError, match="2 ids for 1"):
        index.add([1, 2], good[:1])
    index.add([1, 2], good)
    with pytest.raises(HashIndexError, match="already"):
        index.add([2], good[:1])
    with pytest.raises(HashIndexError, match="not in the index"):
        index.remove(99)
    with pytest.raises(HashIndexError, match="radius"):
        index.search(good[0], 257)
    with pytest.raises(HashIndexError, match="radius"):
        index.search(good[0], -1)
    with pytest.raises(HashIndexError, match="64-bit phash"):
        index.search(HashValue("phash", bytes(8)), 3)
    with pytest.raises(HashIndexError, match="multiple of 64"):
        LinearIndex(100)
    with pytest.raises(HashIndexError, match="different widths"):
        words_of([HashValue("phash", bytes(8)), HashValue("pdq", bytes(32))])
    assert index.nbytes() > 0
