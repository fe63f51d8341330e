"""``karung bench serve``: end-to-end throughput and latency of the scoring service on loopback.

The engine is :mod:`karung.serve.bench.throughput`: a local image server (files held in memory,
the stand-in for a platform's CDN) over generated 1600x1200 JPEGs and ``karung serve`` as
subprocesses, load driven from this process with httpx (``--concurrency`` clients each posting
batches of ``--batch`` URLs for ``--duration`` seconds), then a naive baseline in the same run
(fetch, PIL full decode, torch eager fp32, one image at a time). This module parses and prints.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from karung.cli.common import add_backend, stack_bench

if TYPE_CHECKING:
    from karung.serve.bench.throughput import Summary


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the benchmark's arguments."""
    parser.add_argument("--model", help="checkpoint (default: shipped model, else a random one)")
    add_backend(parser, "auto")
    parser.add_argument("--images", type=int, default=32, help="distinct JPEGs served")
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--height", type=int, default=1200)
    parser.add_argument("--photos", help="directory of photos to upscale (default: synthetic)")
    parser.add_argument("--batch", type=int, default=16, help="URLs per request")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=4.0, help="unmeasured seconds first")
    parser.add_argument("--baseline-images", type=int, default=48)
    parser.add_argument(
        "--threads",
        type=int,
        default=max(1, (os.cpu_count() or 2) // 2),
        help="inference threads of the service and of the baseline (default: half the cores, "
        "the service's own default)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="service processes (`karung serve --workers`; default: one per core)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON summary line")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark; exit 1 when the service cannot be started."""
    from karung.serve.bench.throughput import run_serve_bench

    return stack_bench(args, run_serve_bench, lambda summary: _print(summary, args.json))


def _print(summary: Summary, as_json: bool) -> None:
    if as_json:
        print(json.dumps(asdict(summary)))
        return
    rows: list[tuple[str, Any]] = [
        ("service", f"{summary.images_per_s} images/s ({summary.backend})"),
        ("latency", f"p50 {summary.p50_ms} ms, p99 {summary.p99_ms} ms per batch of "
                    f"{summary.batch} URLs, {summary.concurrency} in flight"),
        ("requests", f"{summary.requests} ({summary.images_ok} images ok, "
                     f"{summary.images_failed} failed)"),
        ("cpu", f"{summary.service_cpu_ms_per_image} ms of service CPU per image "
                f"(all threads and image workers; 2 dedicated cores would give ~"
                f"{2000 / summary.service_cpu_ms_per_image:.0f} images/s)"),
        ("harness", f"{summary.image_server_cpu_ms_per_image} ms image server + "
                    f"{summary.driver_cpu_ms_per_image} ms load driver CPU per image "
                    "(same cores)"),
        ("baseline", f"{summary.baseline_images_per_s} images/s (PIL full decode + torch fp32, "
                     "one at a time)"),
        ("ratio", f"{summary.ratio}x the naive baseline"),
        ("model", summary.model),
        ("threads", summary.threads or "library defaults"),
        ("workers", f"{summary.workers} service processes"),
        ("load avg", summary.load_average),
    ]  # fmt: skip
    for name, value in rows:
        print(f"{name:<9} {value}")
