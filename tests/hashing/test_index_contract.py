"""The contract every hash index must keep: the brute-force answers, in the same order.

Parametrised over every implementation the bank may use (brute force itself, multi-index
hashing through NumPy and through the compiled loop, with narrow or wide substrings, with its
tables built in one go or filled through the pending buffer), so a new index or a new search path
is added to ``FACTORIES`` and inherits every case.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from karung.vision import mih_kernel
from karung.vision.hash_index import HashIndex, LinearIndex
from karung.vision.mih import MultiIndexHashing

Factory = Callable[[np.ndarray, np.ndarray, int], HashIndex]


def _linear(ids: np.ndarray, words: np.ndarray, nbits: int) -> HashIndex:
    index = LinearIndex(nbits)
    if ids.size:
        index.add(ids, words)
    return index


def _mih(compiled: bool, chunk_bits: int | None = None) -> Factory:
    def make(ids: np.ndarray, words: np.ndarray, nbits: int) -> HashIndex:
        return MultiIndexHashing.build(ids, words, nbits, chunk_bits=chunk_bits, compiled=compiled)

    return make


def _mih_incremental(ids: np.ndarray, words: np.ndarray, nbits: int) -> HashIndex:
    """Half built, half added in small batches (pending buffer, then merges)."""
    half = ids.shape[0] // 2
    index = MultiIndexHashing.build(ids[:half], words[:half], nbits)
    for start in range(half, ids.shape[0], 700):
        index.add(ids[start : start + 700], words[start : start + 700])
    return index


FACTORIES: dict[str, Factory] = {
    "linear": _linear,
    "mih-numpy": _mih(compiled=False),
    "mih-numpy-wide": _mih(compiled=False, chunk_bits=20),
    "mih-compiled": _mih(compiled=True),
    "mih-compiled-wide": _mih(compiled=True, chunk_bits=20),
    "mih-incremental": _mih_incremental,
}


def _near(rng: np.random.Generator, row: np.ndarray, flips: int) -> np.ndarray:
    out = row.copy()
    for bit in rng.choice(row.shape[0] * 64, size=flips, replace=False):
        out[bit // 64] ^= np.uint64(1) << np.uint64(int(bit) % 64)
    return out


def _data(nbits: int, radius: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random hashes plus planted near-duplicates of the queries at every distance up to
    ``radius + 3`` (so both sides of the threshold are present)."""
    rng = np.random.default_rng(seed)
    words = rng.integers(0, 2**64, size=(6_000, nbits // 64), dtype=np.uint64)
    queries = rng.integers(0, 2**64, size=(6, nbits // 64), dtype=np.uint64)
    planted = [_near(rng, q, d) for q in queries for d in range(radius + 4)]
    all_words = np.concatenate([words, np.stack(planted)])
    ids = rng.permutation(all_words.shape[0]).astype(np.int64) * 7 + 3
    return ids, all_words, queries


@pytest.mark.parametrize("name", FACTORIES)
@pytest.mark.parametrize(("nbits", "radius"), [(256, 31), (256, 0), (64, 10), (64, 14)])
def test_same_answers_as_brute_force(name: str, nbits: int, radius: int) -> None:
    ids, words, queries = _data(nbits, radius, seed=nbits + radius)
    index, reference = FACTORIES[name](ids, words, nbits), _linear(ids, words, nbits)
    for q in queries:
        expected = reference.search(q, radius)
        assert index.search(q, radius) == expected
        assert len(expected) >= radius + 1  # the planted copies at 0..radius bits
        assert max(d for _, d in expected) == radius  # the one at radius + 1 is out
    assert len(index) == len(reference)


@pytest.mark.parametrize("name", [n for n in FACTORIES if n != "linear"])  # batched ones
def test_batched_search_matches_single_searches(name: str) -> None:
    ids, words, queries = _data(64, 10, seed=3)
    index = FACTORIES[name](ids, words, 64)
    assert isinstance(index, MultiIndexHashing)
    which, found, dists = index.search_many(queries, 10)
    batched = sorted(zip(which.tolist(), found.tolist(), dists.tolist(), strict=True))
    single = sorted((w, i, d) for w, q in enumerate(queries) for i, d in index.search(q, 10))
    assert batched == single


@pytest.mark.parametrize("name", FACTORIES)
def test_empty_index_finds_nothing(name: str) -> None:
    empty = np.zeros((0, 4), dtype=np.uint64)
    index = FACTORIES[name](np.zeros(0, dtype=np.int64), empty, 256)
    assert len(index) == 0
    assert index.search(np.zeros(4, dtype=np.uint64), 256) == []


@pytest.mark.parametrize("name", FACTORIES)
def test_radius_edges_and_removal(name: str) -> None:
    ids, words, queries = _data(256, 31, seed=9)
    index = FACTORIES[name](ids, words, 256)
    q = queries[0]
    everything = index.search(q, 256)  # the whole index, sorted by distance then id
    assert len(everything) == len(index)
    assert [d for _, d in everything] == sorted(d for _, d in everything)
    exact = index.search(q, 0)
    assert [d for _, d in exact] == [0]
    index.remove(exact[0][0])
    assert index.search(q, 0) == []
    assert len(index) == len(everything) - 1


def test_the_compiled_loop_is_there() -> None:
    """numba is a dependency: without it the fast path silently falls back to NumPy."""
    assert mih_kernel.AVAILABLE
