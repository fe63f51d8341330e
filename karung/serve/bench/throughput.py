"""End-to-end throughput and latency of the scoring service on loopback (``karung bench serve``).

Runs :func:`~karung.serve.bench.harness.local_stack` (an image server over generated 1600x1200
JPEGs and ``karung serve``), then drives load from this process with httpx: ``concurrency``
clients each posting batches of ``batch`` URLs for ``duration`` seconds. Reports images per
second and p50/p99 request latency, then measures a naive baseline in the same run (fetch, PIL
full decode, torch eager fp32, one image at a time) and the ratio.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from karung.serve.bench.harness import (
    ADMIN_KEY,
    StackOptions,
    TrafficOptions,
    cpu_snapshot,
    local_stack,
)


@dataclass
class Summary:
    """What the benchmark reports."""

    images_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    images_ok: int
    images_failed: int
    service_cpu_ms_per_image: float
    image_server_cpu_ms_per_image: float
    driver_cpu_ms_per_image: float
    baseline_images_per_s: float
    ratio: float
    backend: str
    model: str
    batch: int
    concurrency: int
    threads: int
    workers: int
    load_average: str


@dataclass
class LoadResult:
    """Latencies and counts of the measured window, and the CPU each process spent in it."""

    latencies: list[float] = field(default_factory=list)
    ok: int = 0
    failed: int = 0
    service_cpu_s: float = float("nan")  # CPU the service process used while measured
    images_cpu_s: float = float("nan")  # CPU of the image server (the CDN stand-in)
    driver_cpu_s: float = float("nan")  # CPU of this load-driving process


def run_serve_bench(stack: StackOptions, load: TrafficOptions) -> Summary:
    """Measure the service under load, then the naive baseline with the service stopped.

    Raises:
        BenchError: the stack could not be started.
    """
    import asyncio

    with local_stack(stack) as running:
        result = asyncio.run(_load(running.base, running.urls, load, running.pids))
        running.stop_service()  # the baseline gets the CPU to itself
        urls = running.urls[: load.baseline_images]
        baseline = naive_baseline(running.model, urls, stack.threads)
    return summarise(result, baseline, running.backend, running.model_note, stack, load)


async def _load(
    base: str, urls: list[str], opts: TrafficOptions, pids: tuple[int, int]
) -> LoadResult:
    """Post batches from ``opts.concurrency`` clients; ``pids`` are the service's and the
    image server's, whose CPU time is measured too."""
    import asyncio

    import httpx
    from tqdm import tqdm

    result = LoadResult()
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    start = time.monotonic()
    measure_from, stop_at = start + opts.warmup, start + opts.warmup + opts.duration

    async def client(worker: int) -> None:
        # A connection per request: a platform has many clients, and a few kept-alive
        # connections would pin the load to whichever workers happened to accept them.
        fresh = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(
            base_url=base, headers=headers, timeout=60, limits=fresh
        ) as http:
            n = worker * opts.batch
            while time.monotonic() < stop_at:
                batch = [{"url": urls[(n + i) % len(urls)]} for i in range(opts.batch)]
                n += opts.batch * opts.concurrency
                t0 = time.monotonic()
                body = (await http.post("/v1/score", json={"items": batch})).json()
                if t0 >= measure_from and time.monotonic() <= stop_at:
                    result.latencies.append(time.monotonic() - t0)
                    ok = sum(1 for item in body.get("items", []) if item["status"] == "ok")
                    result.ok += ok
                    result.failed += opts.batch - ok

    async def clock() -> None:
        with tqdm(total=round(opts.warmup + opts.duration), desc="load", unit="s") as bar:
            await asyncio.sleep(opts.warmup)
            bar.update(round(opts.warmup))
            start_cpu = cpu_snapshot(pids)
            while time.monotonic() < stop_at:
                await asyncio.sleep(min(1.0, max(0.0, stop_at - time.monotonic())))
                bar.update(1)
            ends = cpu_snapshot(pids)
            used = [end - begin for end, begin in zip(ends, start_cpu, strict=True)]
            result.service_cpu_s, result.images_cpu_s, result.driver_cpu_s = used

    await asyncio.gather(clock(), *(client(w) for w in range(opts.concurrency)))
    return result


def naive_baseline(model: Path, urls: list[str], threads: int) -> float:
    """Naive images/s: fetch, PIL full decode, torch eager fp32, one image at a time."""
    import io
    import urllib.request

    import torch
    from PIL import Image

    from karung.vision.checkpoint import Checkpoint
    from karung.vision.classifier import Classifier

    if threads:
        torch.set_num_threads(threads)  # the same thread budget as the service
    clf = Classifier(Checkpoint.load(model))  # TorchBackend, eager fp32
    clf.predict_proba([Image.new("RGB", (64, 64))])  # one warm-up pass
    started = time.perf_counter()
    for url in urls:
        with urllib.request.urlopen(url, timeout=30) as response:  # loopback only
            data = response.read()
        image = Image.open(io.BytesIO(data)).convert("RGB")  # full-size decode, no draft
        clf.predict_proba([image])
    return len(urls) / (time.perf_counter() - started)


def summarise(
    load: LoadResult,
    baseline: float,
    backend: str,
    model: str,
    stack: StackOptions,
    opts: TrafficOptions,
) -> Summary:
    """The figures of one run."""
    import numpy as np

    lat = np.asarray(load.latencies or [float("nan")]) * 1000
    rate = load.ok / opts.duration

    def per_image(seconds: float) -> float:
        return round(seconds * 1000 / load.ok, 2) if load.ok else float("nan")

    return Summary(
        images_per_s=round(rate, 1),
        p50_ms=round(float(np.percentile(lat, 50)), 1),
        p99_ms=round(float(np.percentile(lat, 99)), 1),
        requests=len(load.latencies),
        images_ok=load.ok,
        images_failed=load.failed,
        service_cpu_ms_per_image=per_image(load.service_cpu_s),
        image_server_cpu_ms_per_image=per_image(load.images_cpu_s),
        driver_cpu_ms_per_image=per_image(load.driver_cpu_s),
        baseline_images_per_s=round(baseline, 1),
        ratio=round(rate / baseline, 2) if baseline else float("nan"),
        backend=backend,
        model=model,
        batch=opts.batch,
        concurrency=opts.concurrency,
        threads=stack.threads,
        workers=stack.workers,
        load_average=load_average(),
    )


def load_average() -> str:
    """The 1, 5 and 15 minute load averages (the machine may be shared)."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())
