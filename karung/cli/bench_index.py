"""``karung bench index``: the Hamming range index on random PDQ-sized hashes.

Builds :class:`~karung.vision.hash_index.MultiIndexHashing` over ``--n`` uniform random 256-bit
hashes, queries it with planted near-duplicates (a stored hash with 0..radius+8 bits flipped)
and a share of unrelated random hashes, and compares with the brute-force
:class:`~karung.vision.hash_index.LinearIndex` measured in the same run on a sample of the same
queries (whose results must be identical). Prints build time, memory, p50/p99 latency and the
speed-up ratio; targets for 1,000,000 hashes on 2 cores: p99 < 5 ms at radius 31, build < 30 s,
memory < 300 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``karung bench index``."""
    parser.add_argument("--n", type=int, default=1_000_000, help="number of stored hashes")
    parser.add_argument("--also-10m", action="store_true", help="repeat with 10,000,000 hashes")
    parser.add_argument("--radius", type=int, default=31)
    parser.add_argument("--queries", type=int, default=1000, help="queries for the fast index")
    parser.add_argument("--brute-queries", type=int, default=20, help="queries for brute force")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the results to this JSON file")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark for each size and print one table."""
    sizes = [args.n] + ([10_000_000] if args.also_10m and args.n != 10_000_000 else [])
    results = [bench_size(n, args) for n in sizes]
    _print(results, args.radius)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(results, out, indent=2)
    return 0 if all(r["parity"] for r in results) else 1


def bench_size(n: int, args: argparse.Namespace) -> dict[str, Any]:
    """Build, query and compare at one index size."""
    import gc

    import numpy as np

    from karung.vision.hash_index import LinearIndex
    from karung.vision.mih import MultiIndexHashing

    rng = np.random.default_rng(args.seed)
    words = _random_words(rng, n)
    queries = _plant_queries(rng, words, args.queries, args.radius)
    ids = np.arange(n, dtype=np.int64)
    gc.collect()
    rss0 = _rss()
    start = time.perf_counter()
    index = MultiIndexHashing.build(ids, words, 256)
    build_s = time.perf_counter() - start
    rss_delta = _rss() - rss0
    fast = _latencies(index, queries, args.radius)
    brute_index = LinearIndex(256)
    brute_index.add(ids, words)
    sample = queries[: args.brute_queries]
    brute = _latencies(brute_index, sample, args.radius)
    parity = all(index.search(q, args.radius) == brute_index.search(q, args.radius) for q in sample)
    hits = sum(len(index.search(q, args.radius)) for q in queries[:200])
    return {
        "n": n,
        "radius": args.radius,
        "build_s": round(build_s, 3),
        "index_mb": round(index.nbytes() / 2**20, 1),
        "rss_delta_mb": round(rss_delta / 2**20, 1),
        "raw_mb": round(words.nbytes / 2**20, 1),
        "fast_p50_ms": fast[0],
        "fast_p99_ms": fast[1],
        "brute_p50_ms": brute[0],
        "brute_p99_ms": brute[1],
        "speedup_p50": round(brute[0] / max(fast[0], 1e-9), 1),
        "parity": parity,
        "mean_hits": round(hits / min(200, len(queries)), 2),
        "queries": len(queries),
        "brute_queries": len(sample),
        "cpus": os.cpu_count(),
    }


def _random_words(rng: Any, n: int) -> Any:
    """``n`` uniform random 256-bit hashes, generated in blocks with a progress bar."""
    import numpy as np
    from tqdm import tqdm

    words = np.empty((n, 4), dtype=np.uint64)
    block = 1_000_000
    for start in tqdm(range(0, n, block), desc=f"random hashes ({n:,})", unit="M", leave=False):
        stop = min(n, start + block)
        words[start:stop] = rng.integers(0, 2**64, size=(stop - start, 4), dtype=np.uint64)
    return words


def _plant_queries(rng: Any, words: Any, count: int, radius: int) -> list[Any]:
    """90% stored hashes with 0..radius+8 random bits flipped (hits up to the radius, misses
    just past it), 10% fresh random hashes (no hits)."""
    import numpy as np

    queries = []
    for i in range(count):
        if i % 10 == 9:
            queries.append(rng.integers(0, 2**64, size=4, dtype=np.uint64))
            continue
        q = words[int(rng.integers(words.shape[0]))].copy()
        for bit in rng.choice(256, size=int(rng.integers(0, radius + 9)), replace=False):
            q[bit // 64] ^= np.uint64(1) << np.uint64(bit % 64)
        queries.append(q)
    return queries


def _latencies(index: Any, queries: list[Any], radius: int) -> tuple[float, float]:
    """p50 and p99 of single-query latency in milliseconds (after a short warm-up)."""
    import numpy as np

    for q in queries[:5]:
        index.search(q, radius)
    times = []
    for q in queries:
        start = time.perf_counter_ns()
        index.search(q, radius)
        times.append(time.perf_counter_ns() - start)
    p50, p99 = np.percentile(np.array(times) / 1e6, [50, 99])
    return round(float(p50), 3), round(float(p99), 3)


def _rss() -> int:
    """Resident set size of this process in bytes (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def _print(results: list[dict[str, Any]], radius: int) -> None:
    print(f"Hamming range search, 256-bit hashes, radius {radius}, {os.cpu_count()} CPUs")
    head = (
        f"{'n':>11} {'build s':>8} {'index MB':>9} {'RSS+ MB':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'brute p50':>10} {'brute p99':>10} {'speed-up':>9} {'parity':>7}"
    )
    print(head)
    for r in results:
        print(
            f"{r['n']:>11,} {r['build_s']:>8.2f} {r['index_mb']:>9.1f} {r['rss_delta_mb']:>8.1f} "
            f"{r['fast_p50_ms']:>8.3f} {r['fast_p99_ms']:>8.3f} {r['brute_p50_ms']:>10.2f} "
            f"{r['brute_p99_ms']:>10.2f} {r['speedup_p50']:>8.1f}x {r['parity']!s:>7}"
        )
