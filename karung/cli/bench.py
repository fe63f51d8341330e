"""``karung bench NAME``: benchmarks. ``karung.cli.bench_<name>`` parses and prints (lazy import);
the engines live in the rooms they measure (``karung.serve.bench``, ``karung.batch.bench``,
``karung.training.inference_bench``, ``karung.training.synth.bench``)."""

from __future__ import annotations

import argparse
import importlib
from typing import Final

BENCHES: Final = {
    "decode": "decode a 12 MP JPEG to model size (draft mode vs full decode)",
    "hashes": "hash robustness: recall per transform and false-match rate",
    "intake": "CPU per image from bytes to model input; native PDQ and table normalisation",
    "index": "Hamming range index: build time, memory and query latency vs brute force",
    "inference": "images/s of torch eager fp32 vs ONNX Runtime fp32/int8",
    "synth": "images/s of karung synth (serial baseline vs all cores, CPU per image)",
    "serve": "end-to-end service throughput and latency on loopback",
    "backfill": "karung backfill on Ray vs karung score and the service pipeline (images/s, CPU)",
    "hostile": "good-traffic p99 and worker RSS with and without hostile traffic (issue 16)",
}


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare ``karung bench NAME [ARGS...]``; the bench module parses its own arguments."""
    parser.add_argument(
        "bench", choices=list(BENCHES), help="; ".join(f"{k}: {v}" for k, v in BENCHES.items())
    )
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="arguments of the benchmark")


def run(args: argparse.Namespace) -> int:
    """Import the chosen benchmark module and run it with the remaining arguments."""
    module = importlib.import_module(f"karung.cli.bench_{args.bench}")
    sub = argparse.ArgumentParser(
        prog=f"karung bench {args.bench}", description=BENCHES[args.bench]
    )
    module.configure(sub)
    return int(module.run(sub.parse_args(args.rest)))
