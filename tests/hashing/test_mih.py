"""Multi-index hashing with size-dependent substrings and batched queries, against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from karung.vision.hash_index import LinearIndex, WordStore
from karung.vision.mih import MultiIndexHashing, chunk_plan, chunk_values
from karung.vision.together import _halfway, search_together


def _set_bits(row: np.ndarray, bits: list[int]) -> np.ndarray:
    out = row.copy()
    for bit in bits:
        out[bit // 64] ^= np.uint64(1) << np.uint64(bit % 64)
    return out


def _only_table(
    query: np.ndarray,
    plan: tuple[tuple[int, int], ...],
    radius: int,
    c: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """A hash ``radius`` bits from ``query`` that only table ``c`` can find: ``radius // m``
    differences in substring ``c``, the rest spread so every other substring has more (at
    random positions within each substring)."""
    sub = radius // len(plan)
    others = [i for i in range(len(plan)) if i != c]
    spare = radius - sub
    flips: list[int] = []
    for i in range(len(plan)):
        j = others.index(i) if i != c else -1
        take = sub if i == c else spare // len(others) + (1 if j < spare % len(others) else 0)
        start, width = plan[i]
        flips += [start + int(b) for b in rng.choice(width, size=take, replace=False)]
    return _set_bits(query, flips)


@pytest.mark.parametrize(("nbits", "width", "sub"), [(256, 20, 2), (256, 18, 2), (64, 21, 3)])
def test_every_table_finds_what_only_it_can(nbits: int, width: int, sub: int) -> None:
    """The pigeonhole case per table: a planted hash whose one close substring is table c's
    (the radius is the largest with ``radius // m == sub``, so the others can all be far)."""
    rng = np.random.default_rng(width)
    words = rng.integers(0, 2**64, size=(3_000, nbits // 64), dtype=np.uint64)
    plan = chunk_plan(nbits, words.shape[0], width)
    radius = len(plan) * (sub + 1) - 1
    query = rng.integers(0, 2**64, size=nbits // 64, dtype=np.uint64)
    planted = np.stack(
        [_only_table(query, plan, radius, c, rng) for c in range(len(plan)) for _ in range(8)]
    )
    assert all(int(np.bitwise_count(p ^ query).sum()) == radius for p in planted)
    for n, row in enumerate(planted):  # only substring c is within `sub` of the query's
        c = n // 8
        near = [
            int(np.bitwise_count(chunk_values((row ^ query)[None], bit, w))[0]) <= sub
            for bit, w in plan
        ]
        assert near == [i == c for i in range(len(plan))]
    all_words = np.concatenate([words, planted])
    ids = np.arange(all_words.shape[0], dtype=np.int64) * 3 + 1
    fast = MultiIndexHashing.build(ids, all_words, nbits, chunk_bits=width)
    assert fast.plan == plan
    slow = LinearIndex(nbits)
    slow.add(ids, all_words)
    found = fast.search(query, radius)
    assert found == slow.search(query, radius)
    assert {i for i, _ in found} >= set(ids[-len(planted) :].tolist())


def test_batched_search_equals_one_query_at_a_time() -> None:
    rng = np.random.default_rng(5)
    words = rng.integers(0, 2**64, size=(4_000, 4), dtype=np.uint64)
    ids = rng.permutation(4_000).astype(np.int64)
    fast = MultiIndexHashing.build(ids, words, 256, chunk_bits=18)
    fast.add([10_000, 10_001], words[:2])  # pending rows answer too
    slow = LinearIndex(256)
    slow.add(ids, words)
    slow.add([10_000, 10_001], words[:2])
    queries = np.stack([_set_bits(words[i], list(range(0, 3 * i, 3))) for i in range(12)])
    which, got, dists = fast.search_many(queries, 31)
    batched = sorted(zip(which.tolist(), got.tolist(), dists.tolist(), strict=True))
    single = sorted((row, i, d) for row, q in enumerate(queries) for i, d in slow.search(q, 31))
    assert batched == single
    assert len({(w, i) for w, i, _ in batched}) == len(batched)  # each pair once


def test_plan_follows_the_size() -> None:
    assert [w for _, w in chunk_plan(256, 1_000)] == [16] * 16  # small: 16-bit tables
    ten_million = chunk_plan(256, 10_000_000)
    assert len(ten_million) == 11 and {w for _, w in ten_million} == {23, 24}
    assert sum(w for _, w in ten_million) == 256
    # one-word hashes: fixed 16-bit tables (their candidates are read inline, in bucket order)
    assert [w for _, w in chunk_plan(64, 10_000_000)] == [16] * 4
    assert [w for _, w in chunk_plan(64, 10_000_000, 21)] == [22, 21, 21]


def test_substrings_cross_word_boundaries() -> None:
    words = np.array([[2**63 + 5, 3]], dtype=np.uint64)  # bit 63 set, then bits 64 and 65
    assert int(chunk_values(words, 62, 4)[0]) == 0b1110
    assert int(chunk_values(words, 0, 3)[0]) == 0b101


def test_word_store_looks_up_adds_replacements_and_removals() -> None:
    store = WordStore(256, merge_at=4)
    rows = np.arange(40, dtype=np.uint64).reshape(10, 4)
    store.add(range(10), rows)  # merged into the sorted arrays along the way
    assert len(store) == 10 and int(store.get(7)[0]) == 28  # type: ignore[index]
    store.add([7], rows[:1])
    assert int(store.get(7)[0]) == 0 and len(store) == 10  # type: ignore[index]
    store.remove(3)
    store.remove(99)
    assert store.get(3) is None and store.get(99) is None and len(store) == 9
    store.add([20, 21, 22, 23, 24], rows[:5])  # another merge drops 3 for good
    assert store.get(3) is None and int(store.get(24)[0]) == 16  # type: ignore[index]
    assert len(store) == 14
    bulk = np.arange(400, dtype=np.uint64).reshape(100, 4)
    store.add(np.arange(100, 200)[::-1], bulk)  # one sorted merge, unordered ids
    store.add([24], rows[9:])  # a bulk-stored id replaced by a buffered one
    assert len(store) == 114 and int(store.get(199)[0]) == 0  # type: ignore[index]
    assert int(store.get(24)[0]) == 36 and int(store.get(100)[0]) == 396  # type: ignore[index]


def _image_searches(seed: int) -> list[tuple[MultiIndexHashing, np.ndarray, int]]:
    """One query image's three searches (8 PDQ, a pHash, 16 partials) among indexes that share
    two cores from any size, each with planted near-duplicates of some query hashes."""
    rng = np.random.default_rng(seed)
    out = []
    for nbits, rows, radius in ((256, 8, 31), (64, 1, 14), (64, 16, 10)):
        words = rng.integers(0, 2**64, size=(3000, nbits // 64), dtype=np.uint64)
        queries = rng.integers(0, 2**64, size=(rows, nbits // 64), dtype=np.uint64)
        for i, row in enumerate(queries):  # near copies of every query, within the radius
            near = row.copy()
            near[0] ^= np.uint64((1 << (i % (radius + 1))) - 1)
            words[i] = near
        ids = np.arange(words.shape[0], dtype=np.int64) * 3 + 1
        out.append((MultiIndexHashing.build(ids, words, nbits, parallel_from=0), queries, radius))
    return out


def _as_set(found: tuple[np.ndarray, np.ndarray, np.ndarray]) -> set[tuple[int, int, int]]:
    return set(zip(*(column.tolist() for column in found), strict=True))


@pytest.mark.parametrize("threads", ["1", "2"])
def test_searches_together_answer_as_one_by_one(
    threads: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KARUNG_SEARCH_THREADS", threads)
    searches = _image_searches(seed=11)
    costs = [index.cost(radius) * q.shape[0] for index, q, radius in searches]
    cut = _halfway(searches, costs, sum(costs))
    assert 0 < sum(cut) < sum(q.shape[0] for _, q, _ in searches)  # both halves have work
    together = search_together(searches)
    for (index, queries, radius), found in zip(searches, together, strict=True):
        alone = index.search_many(queries, radius)
        assert _as_set(found) == _as_set(alone)
        assert len(found[0]) == len(alone[0]) >= queries.shape[0]  # each planted copy found


def test_the_halves_split_the_estimated_work_evenly() -> None:
    searches = _image_searches(seed=12)
    costs = [index.cost(radius) * q.shape[0] for index, q, radius in searches]
    cut = _halfway(searches, costs, sum(costs))
    first = sum(c * n / q.shape[0] for c, n, (_, q, _) in zip(costs, cut, searches, strict=True))
    assert all(0 <= n <= q.shape[0] for n, (_, q, _) in zip(cut, searches, strict=True))
    assert abs(first - sum(costs) / 2) <= max(
        c / q.shape[0] for c, (_, q, _) in zip(costs, searches, strict=True)
    )


def test_small_indexes_cost_nothing_and_stay_on_one_core() -> None:
    rng = np.random.default_rng(2)
    words = rng.integers(0, 2**64, size=(100, 1), dtype=np.uint64)
    assert MultiIndexHashing.build(np.arange(100), words, 64).cost(10) == 0.0
