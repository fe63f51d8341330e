"""``karung bench index``: the bank's indexes at 1 and 10 million entries (the engine is
:mod:`karung.serve.bench.index`; this module parses the arguments and prints the table)."""

from __future__ import annotations

import argparse
import gc
import json
import os
from typing import Any


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``karung bench index``."""
    parser.add_argument("--n", type=int, default=1_000_000, help="number of bank entries")
    parser.add_argument("--also-10m", action="store_true", help="repeat with 10,000,000 entries")
    parser.add_argument("--queries", type=int, default=1000, help="query images (fast indexes)")
    parser.add_argument("--brute-queries", type=int, default=10, help="query images, brute force")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        choices=(1, 2),
        help="cores one search may use (default: 2 where there are, as the service does)",
    )
    parser.add_argument("--json", help="also write the results to this JSON file")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark for each size and print one table; 1 when parity fails."""
    from karung.serve.bench.index import bench_size

    if args.threads is not None:
        os.environ["KARUNG_SEARCH_THREADS"] = str(args.threads)
    sizes = [args.n] + ([10_000_000] if args.also_10m and args.n != 10_000_000 else [])
    results = []
    for n in sizes:
        results.append(
            bench_size(n, queries=args.queries, brute_queries=args.brute_queries, seed=args.seed)
        )
        gc.collect()
    _print(results)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(results, out, indent=2)
    return 0 if all(r["parity"] for r in results) else 1


def _print(results: list[dict[str, Any]]) -> None:
    from karung.serve.bench.index import (
        DIHEDRAL,
        FAR_BAND,
        PARTIALS,
        PDQ_RADIUS,
        PHASH_RADIUS,
        thp_mode,
    )

    print(
        f"bank indexes, per query image {DIHEDRAL} PDQ (radius {PDQ_RADIUS}), 1 pHash "
        f"({PHASH_RADIUS}+{FAR_BAND}), 1 mirrored pHash ({PHASH_RADIUS}), {PARTIALS} partial "
        f"pHashes ({PHASH_RADIUS}); "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
        f"transparent huge pages {thp_mode()} ('huge': share of memory on them)"
    )
    print(
        f"{'entries':>11} {'build s':>8} {'index MB':>9} {'RSS GB':>7} {'huge':>5} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'CPU p50':>8} {'CPU p99':>8} {'brute p50':>10} {'speed-up':>9} "
        f"{'parity':>7} {'cores':>6}"
    )
    for r in results:
        print(
            f"{r['entries']:>11,} {r['build_s']:>8.2f} {r['index_mb']:>9.1f} {r['rss_gb']:>7.2f} "
            f"{r['huge_page_share']:>5.0%} "
            f"{r['p50_ms']:>8.3f} {r['p99_ms']:>8.3f} {r['cpu_p50_ms']:>8.3f} "
            f"{r['cpu_p99_ms']:>8.3f} {r['brute_p50_ms']:>10.2f} {r['speedup_p50']:>8.1f}x "
            f"{r['parity']!s:>7} {r['search_cores']:>6}"
        )
