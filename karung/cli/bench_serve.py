"""``karung bench serve``: end-to-end throughput and latency of the scoring service on loopback.

Starts a local image server (:mod:`karung.cli.bench_imageserver`, files held in memory, the
stand-in for a platform's CDN) over generated 1600x1200 JPEGs and
``karung serve`` as subprocesses, then drives load from this process with httpx: ``--concurrency``
clients each posting batches of ``--batch`` URLs for ``--duration`` seconds. Prints images per
second and p50/p99 request latency, then measures a naive baseline in the same run (fetch, PIL
full decode, torch eager fp32, one image at a time) and prints the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from karung.cli.common import die
from karung.vision.backend_names import BACKENDS

ADMIN_KEY = "krg_bench_admin_key_not_secret_000000"


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the benchmark's arguments."""
    parser.add_argument("--model", help="checkpoint (default: shipped model, else a random one)")
    parser.add_argument("--backend", choices=list(BACKENDS), default="auto")
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


def run(args: argparse.Namespace) -> int:
    """Run the benchmark; exit 1 when the service cannot be started."""
    with tempfile.TemporaryDirectory(prefix="karung-bench-") as tmp_name:
        tmp = Path(tmp_name)
        urls = make_images(tmp / "images", args.images, args.width, args.height, args.photos)
        image_port, service_port = _free_port(), _free_port()
        procs: list[subprocess.Popen[bytes]] = []
        try:
            model, model_note = _model(args, tmp)
            procs.append(_image_server(tmp / "images", image_port, tmp))
            procs.append(_service(args, model, service_port, tmp))
            base = f"http://127.0.0.1:{service_port}"
            backend = _wait_ready(base, procs[-1], tmp, args.workers)
            urls = [f"http://127.0.0.1:{image_port}/{name}" for name in urls]
            load = _drive(base, urls, args, (procs[-1].pid, procs[0].pid))
            _stop(procs.pop())  # the baseline gets the CPU to itself
            baseline = _baseline(model, urls[: args.baseline_images], args.threads)
        except RuntimeError as exc:
            return die(str(exc))
        finally:
            for proc in procs:
                _stop(proc)
    summary = _summarise(load, baseline, backend, model_note, args)
    _print(summary, args.json)
    return 0


def make_images(
    folder: Path, count: int, width: int, height: int, photos_dir: str | None = None
) -> list[str]:
    """Write ``count`` JPEGs of ``width`` x ``height`` (upscaled photos from ``photos_dir``, else
    synthetic photo-like ones) into a new ``folder``; return their file names."""
    import numpy as np
    from PIL import Image, ImageFilter

    folder.mkdir(parents=True)
    photos = sorted(Path(photos_dir).glob("*.jpg"))[:count] if photos_dir else []
    rng = np.random.default_rng(0)
    names = []
    for i in range(count):
        if photos:
            img = Image.open(photos[i % len(photos)]).convert("RGB")
        else:  # smooth colour fields plus fine texture compress like a photo (~0.3-0.6 MB)
            small = rng.integers(0, 255, size=(12, 16, 3), dtype=np.uint8)
            img = Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC)
            noise = rng.normal(0, 12, size=(height, width, 3))
            arr = np.clip(np.asarray(img, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
            img = Image.fromarray(arr).filter(ImageFilter.GaussianBlur(0.6))
        img = img.resize((width, height), Image.Resampling.BICUBIC)
        name = f"photo{i:03d}.jpg"
        img.save(folder / name, quality=90)
        names.append(name)
    return names


def _model(args: argparse.Namespace, tmp: Path) -> tuple[Path, str]:
    """The model to serve: ``--model``, the shipped model, or a random-weight stand-in."""
    from karung.vision.checkpoint import default_model_dir, resolve_checkpoint_path
    from karung.vision.errors import CheckpointError

    candidate = Path(args.model) if args.model else default_model_dir()
    try:
        return resolve_checkpoint_path(candidate), str(candidate)
    except CheckpointError as exc:
        if args.model:
            raise RuntimeError(str(exc)) from exc
    from karung.vision.checkpoint import Checkpoint
    from karung.vision.labels import LABELS
    from karung.vision.model import build_model

    path = Checkpoint.from_model(build_model(len(LABELS), pretrained=False), LABELS).save(
        tmp / "model" / "model.pt"
    )
    return path, "random-weight MobileNetV2 224 (no shipped model found)"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _image_server(folder: Path, port: int, tmp: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "karung.cli.bench_imageserver", str(folder), str(port)]
    log = (tmp / "images.log").open("wb")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)


def _service(
    args: argparse.Namespace, model: Path, port: int, tmp: Path
) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable, "-m", "karung.cli.main", "serve", "--port", str(port),
        "--model", str(model), "--backend", args.backend, "--allow-private-networks",
        "--data-dir", str(tmp / "data"), "--workers", str(args.workers),
    ]  # fmt: skip
    env = {**os.environ, "KARUNG_ADMIN_KEY": ADMIN_KEY, "KARUNG_LOG_LEVEL": "WARNING"}
    if args.threads:
        env["KARUNG_INFERENCE_THREADS"] = str(args.threads)
    log = (tmp / "service.log").open("wb")
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)


def _wait_ready(base: str, proc: subprocess.Popen[bytes], tmp: Path, workers: int) -> str:
    """Wait until every worker has loaded the model; return the backend in use."""
    import httpx

    deadline = time.monotonic() + 180
    ready: dict[int, str] = {}
    while len(ready) < workers:
        if proc.poll() is not None:
            log = (tmp / "service.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the service exited early:\n{log}")
        if time.monotonic() > deadline:
            raise RuntimeError("the service did not load its model within 180 s")
        try:  # a fresh connection each time, so any worker may answer
            info = httpx.get(
                f"{base}/v1/admin/model", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
            ).json()
            if info.get("model"):
                ready[int(info["worker"]["pid"])] = str(info["model"]["backend"])
                continue
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    return next(iter(ready.values()))


@dataclass
class _LoadResult:
    latencies: list[float] = field(default_factory=list)
    ok: int = 0
    failed: int = 0
    service_cpu_s: float = float("nan")  # CPU the service process used while measured
    images_cpu_s: float = float("nan")  # CPU of the image server (the CDN stand-in)
    driver_cpu_s: float = float("nan")  # CPU of this load-driving process


def _drive(
    base: str, urls: list[str], args: argparse.Namespace, pids: tuple[int, int]
) -> _LoadResult:
    """Post batches from ``--concurrency`` clients; return latencies and item counts.

    ``pids`` are the service's and the image server's, whose CPU time is measured too.
    """
    import asyncio

    return asyncio.run(_load(base, urls, args, pids))


def _process_cpu_seconds(pid: int, descendants: bool = True) -> float:
    """User + system CPU seconds of ``pid`` and (by default) its live descendants: the
    service's image workers are child processes. Linux ``/proc``, NaN elsewhere."""
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stats[int(entry.name)] = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # the process ended meanwhile
    if pid not in stats:
        return float("nan")
    family, grew = {pid}, True
    while grew and descendants:
        found = {p for p, f in stats.items() if int(f[1]) in family} - family
        family, grew = family | found, bool(found)
    ticks = sum(int(stats[p][11]) + int(stats[p][12]) for p in family)
    return ticks / os.sysconf("SC_CLK_TCK")


def _cpu_snapshot(pids: tuple[int, int]) -> list[float]:
    """CPU seconds of the service (with its workers), the image server and this driver alone
    (its descendants are the other two)."""
    return [*(_process_cpu_seconds(pid) for pid in pids), _process_cpu_seconds(os.getpid(), False)]


async def _load(
    base: str, urls: list[str], args: argparse.Namespace, pids: tuple[int, int]
) -> _LoadResult:
    import asyncio

    import httpx
    from tqdm import tqdm

    result = _LoadResult()
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    start = time.monotonic()
    measure_from, stop_at = start + args.warmup, start + args.warmup + args.duration

    async def client(worker: int) -> None:
        # A connection per request: a platform has many clients, and a few kept-alive
        # connections would pin the load to whichever workers happened to accept them.
        fresh = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(
            base_url=base, headers=headers, timeout=60, limits=fresh
        ) as http:
            n = worker * args.batch
            while time.monotonic() < stop_at:
                batch = [{"url": urls[(n + i) % len(urls)]} for i in range(args.batch)]
                n += args.batch * args.concurrency
                t0 = time.monotonic()
                body = (await http.post("/v1/score", json={"items": batch})).json()
                if t0 >= measure_from and time.monotonic() <= stop_at:
                    result.latencies.append(time.monotonic() - t0)
                    ok = sum(1 for item in body.get("items", []) if item["status"] == "ok")
                    result.ok += ok
                    result.failed += args.batch - ok

    async def clock() -> None:
        with tqdm(total=round(args.warmup + args.duration), desc="load", unit="s") as bar:
            await asyncio.sleep(args.warmup)
            bar.update(round(args.warmup))
            start_cpu = _cpu_snapshot(pids)
            while time.monotonic() < stop_at:
                await asyncio.sleep(min(1.0, max(0.0, stop_at - time.monotonic())))
                bar.update(1)
            ends = _cpu_snapshot(pids)
            used = [end - begin for end, begin in zip(ends, start_cpu, strict=True)]
            result.service_cpu_s, result.images_cpu_s, result.driver_cpu_s = used

    await asyncio.gather(clock(), *(client(w) for w in range(args.concurrency)))
    return result


def _baseline(model: Path, urls: list[str], threads: int) -> float:
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


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _summarise(
    load: _LoadResult, baseline: float, backend: str, model: str, args: argparse.Namespace
) -> Summary:
    import numpy as np

    lat = np.asarray(load.latencies or [float("nan")]) * 1000
    rate = load.ok / args.duration

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
        batch=args.batch,
        concurrency=args.concurrency,
        threads=args.threads,
        workers=args.workers,
        load_average=" ".join(f"{x:.2f}" for x in os.getloadavg()),
    )


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
