"""``karung bench hostile``: good traffic with and without hostile traffic, in the same run.

Starts the image server and ``karung serve --workers N`` on loopback (as ``karung bench serve``
does), then sends good requests (``--batch`` JPEG URLs each) at a fixed rate: first alone (the
quiet phase), then while another process runs every attack of issue 16 in loops
(:mod:`karung.cli.bench_hostile_mix`: decompression bombs, a 31 MB body of empty items, an
unauthenticated 100 MB body, a tenant with two requests of 64 never-finishing URLs, non-object
items, deeply nested JSON, 1x1 and 2x20000 images, wrong logins). Prints good-traffic p50/p99
per phase and their ratio, each worker's peak RSS, the 5xx count, and per attack whether every
answer was the typed one the service promises. Targets: p99 within 2x, under 2 GiB per worker,
no 5xx.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from karung.cli import bench_serve as kit
from karung.cli.common import die


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


def run(args: argparse.Namespace) -> int:
    """Run both phases; exit 1 when the service cannot be started."""
    with tempfile.TemporaryDirectory(prefix="karung-hostile-") as tmp_name:
        tmp = Path(tmp_name)
        names = kit.make_images(tmp / "images", args.images, 1600, 1200)
        image_port, service_port, slow_port = kit._free_port(), kit._free_port(), kit._free_port()
        procs = []
        try:
            model, _ = kit._model(args, tmp)
            procs.append(kit._image_server(tmp / "images", image_port, tmp))
            procs.append(kit._service(args, model, service_port, tmp))
            base = f"http://127.0.0.1:{service_port}"
            backend = kit._wait_ready(base, procs[-1], tmp, args.workers)
            urls = [f"http://127.0.0.1:{image_port}/{n}" for n in names]
            key = _hostile_key(base)
            good_jpeg = (tmp / "images" / names[0]).read_bytes()
            result = _phases(base, urls, args, procs[-1].pid, (key, good_jpeg, slow_port))
        except RuntimeError as exc:
            return die(str(exc))
        finally:
            for proc in procs:
                kit._stop(proc)
    _print(result, backend, args)
    return 0


def _hostile_key(base: str) -> str:
    """A second tenant's key (score scope) for the attacks."""
    import httpx

    r = httpx.post(
        f"{base}/v1/admin/keys",
        json={"name": "hostile", "scopes": ["score"]},
        headers={"Authorization": f"Bearer {kit.ADMIN_KEY}"},
    )
    r.raise_for_status()
    return str(r.json()["key"])


def _phases(
    base: str, urls: list[str], args: argparse.Namespace, serve_pid: int, attack: tuple[Any, ...]
) -> dict[str, Any]:
    """Warm up, then ``--rounds`` of a quiet phase and a hostile one (pairs close in time, so
    the machine's drift hits both alike); the attacking process pauses in quiet phases."""
    from karung.cli.bench_hostile_mix import run_process

    ctx = multiprocessing.get_context("spawn")
    active, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
    key, good_jpeg, slow_port = attack
    attacker = ctx.Process(
        target=run_process,
        args=(base, key, good_jpeg, slow_port, active, stop, out),
        daemon=True,
    )
    attacker.start()
    asyncio.run(_good(base, urls, args, args.warmup))  # warm-up, not measured
    quiet, hostile = Phase(), Phase()
    cpu = {"quiet": 0.0, "hostile": 0.0, "attacker": 0.0}
    rss_quiet: dict[int, float] = {}
    for _ in range(args.rounds):
        for name, phase in (("quiet", quiet), ("hostile", hostile)):
            if name == "hostile":
                active.set()
                time.sleep(2.0)  # every attack is under way
            before = (kit._process_cpu_seconds(serve_pid), _cpu(attacker.pid))
            phase.merge(asyncio.run(_good(base, urls, args, args.duration)))
            cpu[name] += kit._process_cpu_seconds(serve_pid) - before[0]
            if not rss_quiet:  # after the first quiet phase (VmHWM only grows)
                rss_quiet = _worker_peaks(serve_pid)
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
        "rss_hostile": _worker_peaks(serve_pid),
        "attacks": tallies,
        "cpu": cpu,  # CPU seconds: the service (every worker) per phase kind, the attacker
    }


def _cpu(pid: int | None) -> float:
    return kit._process_cpu_seconds(pid, descendants=False) if pid else float("nan")


async def _good(base: str, urls: list[str], args: argparse.Namespace, seconds: float) -> Phase:
    """Start a good request every 1/rate s (open loop: a slow answer does not slow the
    arrivals) for ``seconds``; wait for all of them."""
    import httpx
    from tqdm import tqdm

    phase = Phase()
    headers = {"Authorization": f"Bearer {kit.ADMIN_KEY}"}
    fresh = httpx.Limits(max_keepalive_connections=0, max_connections=None)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120, limits=fresh) as http:

        async def one(n: int) -> None:
            batch = [{"url": urls[(n * args.batch + i) % len(urls)]} for i in range(args.batch)]
            t0 = time.monotonic()
            r = await http.post("/v1/score", json={"items": batch})
            phase.latencies.append(time.monotonic() - t0)
            phase.requests += 1
            if r.status_code >= 500:
                phase.server_errors += 1
                return
            ok = sum(1 for i in r.json().get("items", []) if i.get("status") == "ok")
            phase.images_ok += ok
            phase.images_failed += args.batch - ok

        count = max(1, round(seconds * args.rate))
        tasks = []
        start = time.monotonic()
        for n in tqdm(range(count), desc="good requests", unit="req", leave=False):
            await asyncio.sleep(max(0.0, start + n / args.rate - time.monotonic()))
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
    return phase


def _worker_peaks(serve_pid: int) -> dict[int, float]:
    """Peak RSS (VmHWM, MiB) of every process under ``karung serve`` (its workers)."""
    peaks = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        ppid = re.search(r"PPid:\s+(\d+)", text)
        hwm = re.search(r"VmHWM:\s+(\d+)", text)
        # Workers only: the supervisor's other children (resource tracker) are a few MB.
        if ppid and hwm and int(ppid.group(1)) == serve_pid and int(hwm.group(1)) > 50 * 1024:
            peaks[int(status.parent.name)] = round(int(hwm.group(1)) / 1024, 1)
    return peaks


def _summary(result: dict[str, Any], backend: str, args: argparse.Namespace) -> dict[str, Any]:
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
        "workers": args.workers,
        "rate": args.rate,
        "batch": args.batch,
        "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "cpu_seconds": {k: round(v, 1) for k, v in result["cpu"].items()},
    }


def _print(result: dict[str, Any], backend: str, args: argparse.Namespace) -> None:
    s = _summary(result, backend, args)
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
    print(f"verdict   {verdict} ({backend}, {args.workers} workers, load average "
          f"{s['load_average']})")  # fmt: skip
