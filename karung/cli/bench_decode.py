"""``karung bench decode``: time decoding a 12 MP JPEG to model size, draft mode vs full decode.

The engine is :func:`karung.serve.bench.intake.run_decode_bench`; this module parses and prints.
"""

from __future__ import annotations

import argparse
import statistics


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the benchmark's arguments."""
    parser.add_argument("--width", type=int, default=4000)
    parser.add_argument("--height", type=int, default=3000)
    parser.add_argument("--target", type=int, default=224, help="model input size")
    parser.add_argument("--repeat", type=int, default=15)


def run(args: argparse.Namespace) -> int:
    """Print median/p95 milliseconds of both paths and their ratio."""
    from karung.serve.bench.intake import run_decode_bench

    size, base, best = run_decode_bench(args.width, args.height, args.target, args.repeat)
    print(f"{args.width}x{args.height} JPEG, {size / 1e6:.1f} MB, target {args.target}px")
    _row("full decode (baseline)", base, base)
    _row("draft + reduce (karung)", best, base)
    return 0


def _row(name: str, samples: list[float], base: list[float]) -> None:
    med, p95 = statistics.median(samples), sorted(samples)[int(0.95 * (len(samples) - 1))]
    ratio = statistics.median(base) / med
    print(f"  {name:<26} median {med:7.1f} ms  p95 {p95:7.1f} ms  speed-up x{ratio:5.1f}")
