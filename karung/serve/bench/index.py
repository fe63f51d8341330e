"""The engine of ``karung bench index``: the bank's indexes at 1 and 10 million entries, on
random hashes (``karung.cli.bench_index`` parses the arguments and prints the table).

An entry costs what a version-2 bank entry costs: one PDQ and one pHash of the image (searched),
the pHash of its centre crop (searched) and that crop's PDQ (looked up for the guard). A query
image costs what the matcher does for one photo: its 8 dihedral PDQ hashes at the PDQ radius,
its pHash at the pHash radius plus the far band, its mirrored pHash at the pHash radius, and
the pHashes of its 17 partial images among the centre crops, in four batched searches
(:meth:`~karung.vision.mih.MultiIndexHashing.search_many`), plus the guard look-ups of the
hits. Queries are planted near a stored entry (a
random 0..radius+8 bits flipped in one PDQ, pHash and partial), one in ten unrelated.

The brute-force :class:`~karung.vision.hash_index.LinearIndex` answers a sample of the same
query images in the same run; their results must be identical. Reports build time, resident
memory, p50/p99 latency per query image and the speed-up ratio over brute force. Targets
(issue 19, on this 2-core machine): 10,000,000 entries in <= 8 GB resident, p99 <= 2 ms per
query image, build <= 2 minutes, parity with brute force.
"""

from __future__ import annotations

import os
import time
from typing import Any, Final

PDQ_RADIUS: Final = 31
PHASH_RADIUS: Final = 10
FAR_BAND: Final = 4
PARTIALS: Final = 17
DIHEDRAL: Final = 8


def bench_size(n: int, *, queries: int, brute_queries: int, seed: int = 0) -> dict[str, Any]:
    """Build, query and compare at one bank size: ``queries`` query images on the fast indexes,
    the first ``brute_queries`` of them on brute force too."""
    import gc

    import numpy as np

    rng = np.random.default_rng(seed)
    data = {name: _random_words(rng, n, width, name) for name, width in _COLUMNS}
    planted = [_plant(rng, data) for _ in range(queries)]
    gc.collect()
    rss0 = _rss()
    start, start_cpu = time.perf_counter(), time.process_time()
    fast = _build(n, data, fast=True)
    build_s, build_cpu_s = time.perf_counter() - start, time.process_time() - start_cpu
    rss_built, huge_built = _rss(), _huge_pages()
    latency = _latencies(fast, planted)
    del data["crop_pdq"]  # only the fast side's look-up store needs it from here on
    brute = _build(n, data, fast=False, guard=fast["crop_pdq"])
    sample = planted[:brute_queries]
    brute_latency = _latencies(brute, sample)
    parity = all(_answer(fast, q) == _answer(brute, q) for q in sample)
    hits = sum(len(_answer(fast, q)) for q in planted[:200])
    index_bytes = sum(ix.nbytes() for ix in fast.values())
    return {
        "entries": n,
        "hashes_per_entry": "1 PDQ + 1 pHash + centre crop (pHash searched, PDQ looked up)",
        "hashes_per_query": DIHEDRAL + 2 + PARTIALS,
        "build_s": round(build_s, 2),
        "build_cpu_s": round(build_cpu_s, 2),
        "index_mb": round(index_bytes / 2**20, 1),
        "rss_gb": round(rss_built / 2**30, 2),
        "rss_growth_mb": round((rss_built - rss0) / 2**20, 1),
        "huge_page_share": round(huge_built / rss_built, 2) if rss_built else 0.0,
        "transparent_huge_pages": thp_mode(),
        "p50_ms": latency[0],
        "p99_ms": latency[1],
        "cpu_p50_ms": latency[2],
        "cpu_p99_ms": latency[3],
        "brute_p50_ms": brute_latency[0],
        "speedup_p50": round(brute_latency[0] / max(latency[0], 1e-9), 1),
        "parity": parity,
        "mean_hits": round(hits / max(1, min(200, len(planted))), 2),
        "queries": len(planted),
        "brute_queries": len(sample),
        "cpus": os.cpu_count(),
        "search_cores": _search_cores(fast, planted[0]),
    }


def _search_cores(index: dict[str, Any], query: dict[str, Any]) -> int:
    """Cores a query image's searches use, by the matcher's own rule."""
    from karung.vision.together import cores_used

    return cores_used([(_index(index, name), query[name], radius) for name, radius in _SEARCHES])


# (name, 64-bit words per hash) of what one entry stores.
_COLUMNS: Final = (("pdq", 4), ("phash", 1), ("crop_phash", 1), ("crop_pdq", 4))


def _build(n: int, data: dict[str, Any], *, fast: bool, guard: Any = None) -> dict[str, Any]:
    """The matcher's containers over ``data`` (ids 0..n-1): multi-index or brute force."""
    import numpy as np

    from karung.vision.hash_index import LinearIndex, WordStore
    from karung.vision.mih import MultiIndexHashing

    ids = np.arange(n, dtype=np.int64)
    out: dict[str, Any] = {}
    for name, width in _COLUMNS:
        if name == "crop_pdq":
            if guard is None:
                store = WordStore(256)
                store.add(ids, data[name])
                guard = store
            out[name] = guard
        elif fast:
            out[name] = MultiIndexHashing.build(ids, data[name], width * 64)
        else:
            out[name] = LinearIndex(width * 64)
            out[name].add(ids, data[name])
    return out


def _plant(rng: Any, data: dict[str, Any]) -> dict[str, Any]:
    """One query image: hashes near a random entry's (nine in ten) or unrelated ones."""
    import numpy as np

    n = data["pdq"].shape[0]
    target = int(rng.integers(n))
    related = rng.random() < 0.9
    query: dict[str, Any] = {}
    for name, width, count, radius in (
        ("pdq", 4, DIHEDRAL, PDQ_RADIUS),
        ("phash", 1, 1, PHASH_RADIUS + FAR_BAND),
        ("phash_mirrored", 1, 1, PHASH_RADIUS),
        ("crop_phash", 1, PARTIALS, PHASH_RADIUS),
    ):
        words = rng.integers(0, 2**64, size=(count, width), dtype=np.uint64)
        if related:
            near = data[_INDEX.get(name, name)][target].copy()
            for bit in rng.choice(width * 64, size=int(rng.integers(0, radius + 9)), replace=False):
                near[bit // 64] ^= np.uint64(1) << np.uint64(bit % 64)
            words[int(rng.integers(count))] = near
        query[name] = words
    query["crop_pdq"] = rng.integers(0, 2**64, size=(PARTIALS, 4), dtype=np.uint64)
    return query


_SEARCHES: Final = (
    ("pdq", PDQ_RADIUS),
    ("phash", PHASH_RADIUS + FAR_BAND),
    ("phash_mirrored", PHASH_RADIUS),
    ("crop_phash", PHASH_RADIUS),
)
# Query hashes searched in another entry column's index: the mirrored pHash among the pHashes.
_INDEX: Final = {"phash_mirrored": "phash"}


def _answer(index: dict[str, Any], query: dict[str, Any]) -> list[tuple[str, int, int, int]]:
    """Every (search, query row, id, distance) hit, sorted, plus the guard look-ups' results."""
    import numpy as np

    out: list[tuple[str, int, int, int]] = []
    for (name, _), (which, ids, dists) in zip(_SEARCHES, _search_all(index, query), strict=True):
        out += [(name, int(w), int(i), int(d)) for w, i, d in zip(which, ids, dists, strict=True)]
        if name == "crop_phash":  # the guard: each hit's crop PDQ against the partial's
            for w, i in zip(which, ids, strict=True):
                stored = index["crop_pdq"].get(int(i))
                bits = int(np.bitwise_count(stored ^ query["crop_pdq"][int(w)]).sum())
                out.append(("crop_guard", int(w), int(i), bits))
    return sorted(out)


def _search_all(index: dict[str, Any], query: dict[str, Any]) -> list[tuple[Any, Any, Any]]:
    """The searches of one query image (:data:`_SEARCHES`): together, as the matcher runs
    them, on the fast indexes (:func:`~karung.vision.together.search_together`); one row at a
    time on brute force."""
    import numpy as np

    from karung.vision.together import search_together

    searches = [(_index(index, name), query[name], radius) for name, radius in _SEARCHES]
    if all(hasattr(ix, "search_many") for ix, _, _ in searches):
        return search_together(searches)
    out = []
    for ix, queries, radius in searches:
        rows = [(w, i, d) for w, q in enumerate(queries) for i, d in ix.search(q, radius)]
        empty = np.zeros(0, dtype=np.int64)
        cols = [np.array(c, dtype=np.int64) for c in zip(*rows, strict=True)] if rows else None
        out.append((cols[0], cols[1], cols[2]) if cols else (empty, empty, empty))
    return out


def _index(indexes: dict[str, Any], name: str) -> Any:
    """The index a search of the query hashes ``name`` runs in."""
    return indexes[_INDEX.get(name, name)]


def _latencies(
    index: dict[str, Any], queries: list[dict[str, Any]]
) -> tuple[float, float, float, float]:
    """p50 and p99 per query image in milliseconds, wall clock and CPU time of this process
    (on a shared machine the CPU time shows the work, the wall clock adds the waiting)."""
    import numpy as np

    for q in queries[:3]:
        _answer(index, q)
    wall, cpu = [], []
    for q in queries:
        start, start_cpu = time.perf_counter_ns(), time.process_time_ns()
        _answer(index, q)
        wall.append(time.perf_counter_ns() - start)
        cpu.append(time.process_time_ns() - start_cpu)
    p50, p99 = np.percentile(np.array(wall) / 1e6, [50, 99])
    c50, c99 = np.percentile(np.array(cpu) / 1e6, [50, 99])
    return round(float(p50), 3), round(float(p99), 3), round(float(c50), 3), round(float(c99), 3)


def _random_words(rng: Any, n: int, width: int, name: str) -> Any:
    """``n`` uniform random hashes of ``width`` words, generated in blocks with progress."""
    import numpy as np
    from tqdm import tqdm

    words = np.empty((n, width), dtype=np.uint64)
    block = 1_000_000
    for start in tqdm(range(0, n, block), desc=f"{name} ({n:,})", unit="M", leave=False):
        stop = min(n, start + block)
        words[start:stop] = rng.integers(0, 2**64, size=(stop - start, width), dtype=np.uint64)
    return words


def thp_mode() -> str:
    """The system's transparent huge page mode (``always``, ``madvise``, ``never``), or
    ``unknown`` where it cannot be read."""
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled", encoding="ascii") as mode:
            text = mode.read()
    except OSError:
        return "unknown"
    start, end = text.find("["), text.find("]")
    return text[start + 1 : end] if 0 <= start < end else "unknown"


def _huge_pages() -> int:
    """Bytes of this process's memory on transparent huge pages (Linux; 0 elsewhere). NumPy
    asks for them for its large arrays; where the system allows none (THP ``never``) a query
    image costs about a quarter more at 10 million entries (docs/HASHING.md)."""
    try:
        with open("/proc/self/smaps_rollup", encoding="ascii") as rollup:
            for line in rollup:
                if line.startswith("AnonHugePages:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _rss() -> int:
    """Resident set size of this process in bytes (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0
