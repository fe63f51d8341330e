"""``karung bench hostile``: good traffic with and without hostile traffic, in the same run.

The engine is :mod:`karung.serve.bench.hostile`: the image server and ``karung serve --workers
N`` on loopback, good requests (``--batch`` JPEG URLs each) at a fixed rate, first alone (the
quiet phase), then while another process runs every attack of issue 16 in loops
(:mod:`karung.serve.bench.attacks`: decompression bombs, a 31 MB body of empty items, an
unauthenticated 100 MB body, a tenant with two requests of 64 never-finishing URLs, non-object
items, deeply nested JSON, 1x1 and 2x20000 images, wrong logins). Prints good-traffic p50/p99
per phase and their ratio, each worker's peak RSS, the 5xx count, and per attack whether every
answer was the typed one the service promises. Targets: p99 within 2x, under 2 GiB per worker,
no 5xx.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from karung.cli.common import stack_bench


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the benchmark's arguments."""
    parser.add_argument("--model", help="checkpoint (default: shipped model, else a random one)")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--workers", type=int, default=2, help="service processes")
    parser.add_argument("--threads", type=int, default=1, help="inference threads per worker")
    parser.add_argument("--images", type=int, default=32, help="distinct good JPEGs served")
    parser.add_argument("--batch", type=int, default=16, help="JPEG URLs per good request")
    parser.add_argument(
        "--rate", type=float, default=1.0, help="good requests per second (open loop)"
    )
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per phase")
    parser.add_argument("--rounds", type=int, default=4, help="quiet + hostile phase pairs")
    parser.add_argument("--warmup", type=float, default=5.0, help="unmeasured seconds first")
    parser.add_argument("--json", action="store_true", help="print one JSON summary line")


def run(args: argparse.Namespace) -> int:
    """Run both phases; exit 1 when the service cannot be started."""
    from karung.serve.bench.hostile import run_hostile_bench

    return stack_bench(args, run_hostile_bench, lambda summary: _print(summary, args))


def _print(s: dict[str, Any], args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps(s))
        return
    (nq, nh), (fq, fh) = s["good_requests"], s["good_images_failed"]
    cpu = s["cpu_seconds"]
    print(
        f"good p99  quiet {s['p99_quiet_ms']} ms, hostile {s['p99_hostile_ms']} ms: "
        f"{s['p99_ratio']}x (target <= 2x)"
    )
    print(f"good p50  quiet {s['p50_quiet_ms']} ms, hostile {s['p50_hostile_ms']} ms")
    print(
        f"good      {nq} + {nh} requests of {args.batch} URLs at {args.rate}/s; "
        f"images failed {fq} + {fh}"
    )
    print(
        f"peak RSS  per worker (MiB): quiet {s['worker_peak_rss_mib_quiet']}, after hostile "
        f"{s['worker_peak_rss_mib']} (target < 2048)"
    )
    print(
        f"cpu       service {cpu['quiet']} s quiet, {cpu['hostile']} s hostile; the attacking "
        f"process {cpu['attacker']} s (same cores, niced), over {args.rounds} x "
        f"{args.duration:g} s of each phase"
    )
    print(f"5xx       {s['server_errors']} (target 0)")
    for name, t in s["attacks"].items():
        mark = "typed" if t["untyped"] == 0 and t["sent"] else "NOT ALL TYPED"
        lost = f" ({t['transport_errors']} without an answer)" if t["transport_errors"] else ""
        print(f"attack    {name:<24} {t['sent']:>6} sent, {t['typed']:>6} typed: {mark}{lost}")
        for example in t["examples"]:
            print(f"          unexpected: {example}")
    verdict = "all targets met" if s["targets_met"] else "TARGETS MISSED"
    print(f"verdict   {verdict} ({s['backend']}, {args.workers} workers, load average "
          f"{s['load_average']})")  # fmt: skip
