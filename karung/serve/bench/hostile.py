"""Good traffic with and without hostile traffic, in the same run (``karung bench hostile``).

Runs :func:`~karung.serve.bench.harness.local_stack` (the image server and
``karung serve --workers N`` on loopback, as ``karung bench serve`` does), then sends good
requests (``batch`` JPEG URLs each) at a fixed rate: first alone (the quiet phase), then while
another process runs every attack of issue 16 in loops (:mod:`karung.serve.bench.attacks`).
Reports good-traffic p50/p99 per phase and their ratio, each worker's peak RSS, the 5xx count,
and per attack whether every answer was the typed one the service promises. Targets: p99
within 2x, under 2 GiB per worker, no 5xx.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from dataclasses import dataclass, field
from typing import Any

from karung.serve.bench.harness import (
    ADMIN_KEY,
    StackOptions,
    TrafficOptions,
    free_port,
    local_stack,
    process_cpu_seconds,
    worker_peaks,
)
from karung.serve.bench.throughput import load_average


@dataclass
class Phase:
    """Good traffic of one phase."""

    requests: int = 0
    latencies: list[float] = field(default_factory=list)
    images_ok: int = 0
    images_failed: int = 0
    server_errors: int = 0

    def merge(self, other: Phase) -> None:
        """Add another phase's requests to this one."""
        self.requests += other.requests
        self.latencies += other.latencies
        self.images_ok += other.images_ok
        self.images_failed += other.images_failed
        self.server_errors += other.server_errors

    def percentile(self, q: float) -> float:
        """Latency percentile in ms (NaN when nothing was measured)."""
        import numpy as np

        if not self.latencies:
            return float("nan")
        return round(float(np.percentile(np.asarray(self.latencies) * 1000, q)), 1)


def run_hostile_bench(stack: StackOptions, opts: TrafficOptions) -> dict[str, Any]:
    """Both phases, summarised (see :func:`summary`).

    Raises:
        BenchError: the stack could not be started.
    """
    with local_stack(stack, prefix="karung-hostile-") as running:
        key = _hostile_key(running.base)
        good_jpeg = (running.tmp / "images" / running.image_names[0]).read_bytes()
        attack = (key, good_jpeg, free_port())
        result = _phases(running.base, running.urls, opts, running.service.pid, attack)
    return summary(result, running.backend, stack.workers, opts)


def _hostile_key(base: str) -> str:
    """A second tenant's key (score scope) for the attacks."""
    import httpx

    r = httpx.post(
        f"{base}/v1/admin/keys",
        json={"name": "hostile", "scopes": ["score"]},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    r.raise_for_status()
    return str(r.json()["key"])


def _phases(
    base: str, urls: list[str], opts: TrafficOptions, serve_pid: int, attack: tuple[Any, ...]
) -> dict[str, Any]:
    """Warm up, then ``--rounds`` of a quiet phase and a hostile one (pairs close in time, so
    the machine's drift hits both alike); the attacking process pauses in quiet phases."""
    from karung.serve.bench.attacks import run_process

    ctx = multiprocessing.get_context("spawn")
    active, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
    key, good_jpeg, slow_port = attack
    attacker = ctx.Process(
        target=run_process,
        args=(base, key, good_jpeg, slow_port, active, stop, out),
        daemon=True,
    )
    attacker.start()
    asyncio.run(_good(base, urls, opts, opts.warmup))  # warm-up, not measured
    quiet, hostile = Phase(), Phase()
    cpu = {"quiet": 0.0, "hostile": 0.0, "attacker": 0.0}
    rss_quiet: dict[int, float] = {}
    for _ in range(opts.rounds):
        for name, phase in (("quiet", quiet), ("hostile", hostile)):
            if name == "hostile":
                active.set()
                time.sleep(2.0)  # every attack is under way
            before = (process_cpu_seconds(serve_pid), _cpu(attacker.pid))
            phase.merge(asyncio.run(_good(base, urls, opts, opts.duration)))
            cpu[name] += process_cpu_seconds(serve_pid) - before[0]
            if not rss_quiet:  # after the first quiet phase (VmHWM only grows)
                rss_quiet = worker_peaks(serve_pid)
            if name == "hostile":
                cpu["attacker"] += _cpu(attacker.pid) - before[1]
                active.clear()
                time.sleep(2.0)  # the attacks in flight drain before the next quiet phase
    stop.set()
    tallies = out.get(timeout=180)
    attacker.join(timeout=30)
    return {
        "quiet": quiet,
        "hostile": hostile,
        "rss_quiet": rss_quiet,
        "rss_hostile": worker_peaks(serve_pid),
        "attacks": tallies,
        "cpu": cpu,  # CPU seconds: the service (every worker) per phase kind, the attacker
    }


def _cpu(pid: int | None) -> float:
    return process_cpu_seconds(pid, descendants=False) if pid else float("nan")


async def _good(base: str, urls: list[str], opts: TrafficOptions, seconds: float) -> Phase:
    """Start a good request every 1/rate s (open loop: a slow answer does not slow the
    arrivals) for ``seconds``; wait for all of them."""
    import httpx
    from tqdm import tqdm

    phase = Phase()
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    fresh = httpx.Limits(max_keepalive_connections=0, max_connections=None)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120, limits=fresh) as http:

        async def one(n: int) -> None:
            batch = [{"url": urls[(n * opts.batch + i) % len(urls)]} for i in range(opts.batch)]
            t0 = time.monotonic()
            r = await http.post("/v1/score", json={"items": batch})
            phase.latencies.append(time.monotonic() - t0)
            phase.requests += 1
            if r.status_code >= 500:
                phase.server_errors += 1
                return
            ok = sum(1 for i in r.json().get("items", []) if i.get("status") == "ok")
            phase.images_ok += ok
            phase.images_failed += opts.batch - ok

        count = max(1, round(seconds * opts.rate))
        tasks = []
        start = time.monotonic()
        for n in tqdm(range(count), desc="good requests", unit="req", leave=False):
            await asyncio.sleep(max(0.0, start + n / opts.rate - time.monotonic()))
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
    return phase


def summary(
    result: dict[str, Any], backend: str, workers: int, opts: TrafficOptions
) -> dict[str, Any]:
    """The figures, and whether the targets (p99 within 2x, < 2 GiB a worker, no 5xx, every
    hostile answer typed) were met."""
    quiet, hostile = result["quiet"], result["hostile"]
    p99q, p99h = quiet.percentile(99), hostile.percentile(99)
    ratio = round(p99h / p99q, 2) if p99q else float("nan")
    attacks = result["attacks"]
    server_errors = quiet.server_errors + hostile.server_errors
    server_errors += sum(t["server_errors"] for t in attacks.values())
    all_typed = all(t["untyped"] == 0 and t["sent"] > 0 for t in attacks.values())
    peak = max([*result["rss_hostile"].values(), 0.0])
    return {
        "p99_quiet_ms": p99q,
        "p99_hostile_ms": p99h,
        "p99_ratio": ratio,
        "p50_quiet_ms": quiet.percentile(50),
        "p50_hostile_ms": hostile.percentile(50),
        "good_requests": [quiet.requests, hostile.requests],
        "good_images_failed": [quiet.images_failed, hostile.images_failed],
        "worker_peak_rss_mib_quiet": result["rss_quiet"],
        "worker_peak_rss_mib": result["rss_hostile"],
        "server_errors": server_errors,
        "every_hostile_answer_typed": all_typed,
        "attacks": attacks,
        "targets_met": bool(ratio <= 2.0 and peak < 2048 and server_errors == 0 and all_typed),
        "backend": backend,
        "workers": workers,
        "rate": opts.rate,
        "batch": opts.batch,
        "load_average": load_average(),
        "cpu_seconds": {k: round(v, 1) for k, v in result["cpu"].items()},
    }
