"""Synthesis speed: ``python -m karung.training.synth.bench [--n 2000] [--source DIR|none]``.

Runs a serial baseline on a slice and the parallel run on the full ``--n`` in the same process
(same machine state), then prints images/s, per core, the speed-up over serial, the projected
time for 20,000 images and the load average (the machine may be shared).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from karung.training.synth.config import SynthConfig
from karung.training.synth.runner import generate

TARGET_PER_CORE = 20.0


def _cpu() -> float:
    t = os.times()  # this process plus its reaped children (the pool workers)
    return t.user + t.system + t.children_user + t.children_system


def _run(out: Path, n: int, workers: int, source: Path | None, seed: int) -> tuple[float, float]:
    """Wall seconds and CPU seconds (all processes) of one ``generate``."""
    cfg = SynthConfig(out=out, n=n, seed=seed, source=source, workers=workers, contact_count=8)
    t0, c0 = time.perf_counter(), _cpu()
    generate(cfg)
    return time.perf_counter() - t0, _cpu() - c0


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the benchmark's arguments (also usable by a ``karung bench synth`` shim)."""
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--baseline-n", type=int, default=200, help="serial slice")
    parser.add_argument("--source", default="../shared/data/clothing-cc0")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))


def run(args: argparse.Namespace) -> int:
    """Run the serial baseline and the parallel run; print the figures; exit 0."""
    source = None if args.source == "none" else Path(args.source)
    with tempfile.TemporaryDirectory(prefix="karung-synth-bench-") as tmp:
        load_before = os.getloadavg()
        serial, serial_cpu = _run(Path(tmp) / "serial", args.baseline_n, 1, source, 1)
        parallel, parallel_cpu = _run(Path(tmp) / "parallel", args.n, args.workers, source, 2)
        load_after = os.getloadavg()
    s_rate, p_rate = args.baseline_n / serial, args.n / parallel
    per_core = p_rate / args.workers
    cpu_ms = 1000.0 * parallel_cpu / args.n
    print(f"serial baseline : {args.baseline_n} images in {serial:.1f} s = {s_rate:.1f} img/s")
    print(
        f"parallel        : {args.n} images in {parallel:.1f} s = {p_rate:.1f} img/s "
        f"on {args.workers} workers = {per_core:.1f} img/s per core "
        f"(target {TARGET_PER_CORE:.0f}; ratio {per_core / TARGET_PER_CORE:.2f})"
    )
    print(f"speed-up        : {p_rate / s_rate:.2f}x over serial")
    print(
        f"20,000 images   : ~{20000 / p_rate / 60:.1f} min projected (fixed segmentation "
        "cost included at this --n, so slightly pessimistic)"
    )
    print(
        f"CPU per image   : {cpu_ms:.1f} ms (all processes, segmentation included; serial "
        f"{1000.0 * serial_cpu / args.baseline_n:.1f} ms) = {1000.0 / cpu_ms:.1f} img/s per "
        f"core when the core is free (ratio {1000.0 / cpu_ms / TARGET_PER_CORE:.2f} to target)"
    )
    print(
        f"load average    : {load_before[0]:.2f} before, {load_after[0]:.2f} after "
        f"(1-min; {os.cpu_count()} cpus; wall figures suffer when other jobs share the cores)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m karung.training.synth.bench``."""
    parser = argparse.ArgumentParser(prog="python -m karung.training.synth.bench")
    configure(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
