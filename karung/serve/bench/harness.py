"""The loopback stack the service benchmarks run on, and how they measure processes.

:func:`local_stack` writes photo-like JPEGs, starts the in-memory image server
(:mod:`karung.serve.bench.imageserver`, the stand-in for a platform's CDN) and ``karung serve``
as subprocesses, waits until every worker has loaded its model, and stops both on exit.
CPU and peak memory are read from Linux ``/proc`` (NaN or nothing elsewhere).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from karung.serve.errors import ServeError

if TYPE_CHECKING:
    import numpy as np

ADMIN_KEY: Final = "krg_bench_admin_key_not_secret_000000"
READY_SECONDS: Final = 180


class BenchError(ServeError, code="bench_failed"):
    """The benchmark's stack could not be started (a bad model, a service that exits)."""


def make_images(
    folder: Path, count: int, width: int, height: int, photos_dir: str | None = None
) -> list[str]:
    """Write ``count`` JPEGs of ``width`` x ``height`` (upscaled photos from ``photos_dir``, else
    synthetic photo-like ones) into a new ``folder``; return their file names."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True)
    photos = sorted(Path(photos_dir).glob("*.jpg"))[:count] if photos_dir else []
    rng = np.random.default_rng(0)
    names = []
    for i in range(count):
        if photos:
            img = Image.open(photos[i % len(photos)]).convert("RGB")
        else:
            img = Image.fromarray(photo_like_pixels(rng, width, height))
        img = img.resize((width, height), Image.Resampling.BICUBIC)
        name = f"photo{i:03d}.jpg"
        img.save(folder / name, quality=90)
        names.append(name)
    return names


def photo_like_pixels(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Smooth colour fields plus fine texture: compresses like a photo (~0.3-0.6 MB at
    1600x1200), not like a flat fill. Returns ``height`` x ``width`` x 3 uint8 pixels."""
    import numpy as np
    from PIL import Image, ImageFilter

    small = rng.integers(0, 255, size=(12, 16, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC)
    noise = rng.normal(0, 12, size=(height, width, 3))
    arr = np.clip(np.asarray(img, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
    return np.asarray(Image.fromarray(arr).filter(ImageFilter.GaussianBlur(0.6)))


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bench_model(model: str | None, tmp: Path) -> tuple[Path, str]:
    """The checkpoint to serve and how to name it: ``model``, else the shipped model, else a
    random-weight stand-in written under ``tmp``.

    Raises:
        BenchError: ``model`` was given and holds no checkpoint.
    """
    from karung.vision.errors import CheckpointError
    from karung.vision.modeldir import ModelDir, default_model_dir

    candidate = Path(model) if model else default_model_dir()
    try:
        return ModelDir.find(candidate).checkpoint, str(candidate)
    except CheckpointError as exc:
        if model:
            raise BenchError(str(exc)) from exc
    from karung.vision.checkpoint import Checkpoint
    from karung.vision.labels import LABELS
    from karung.vision.model import build_model

    stand_in = Checkpoint.from_model(build_model(len(LABELS), pretrained=False), LABELS)
    path = stand_in.save(ModelDir(tmp / "model").checkpoint)
    return path, "random-weight MobileNetV2 224 (no shipped model found)"


@dataclass(frozen=True)
class StackOptions:
    """What to serve and how: ``model`` None is the shipped model (else a random stand-in),
    ``threads`` 0 the service's default; ``images`` JPEGs of ``width`` x ``height``, upscaled
    from ``photos`` when given. The command line holds the defaults."""

    model: str | None
    backend: str
    workers: int
    threads: int
    images: int
    width: int = 1600
    height: int = 1200
    photos: str | None = None


@dataclass(frozen=True)
class TrafficOptions:
    """The good traffic: requests of ``batch`` URLs, measured for ``duration`` s after
    ``warmup`` s; either ``concurrency`` clients back to back (``karung bench serve``, whose
    naive baseline then scores ``baseline_images`` of the URLs) or ``rate`` requests a second
    in ``rounds`` pairs of a quiet and a hostile phase (``karung bench hostile``). The command
    lines hold the defaults."""

    batch: int
    duration: float
    warmup: float
    concurrency: int = 1
    baseline_images: int = 0
    rate: float = 1.0
    rounds: int = 1


@dataclass
class Stack:
    """A running image server and service, and what the load drivers need of them."""

    tmp: Path
    base: str
    urls: list[str]
    image_names: list[str]
    backend: str
    model: Path
    model_note: str
    image_server: subprocess.Popen[bytes]
    service: subprocess.Popen[bytes]

    @property
    def pids(self) -> tuple[int, int]:
        """The service's and the image server's process ids."""
        return self.service.pid, self.image_server.pid

    def stop_service(self) -> None:
        """Stop the service now (a baseline measured next gets the CPU to itself)."""
        stop(self.service)


@contextmanager
def local_stack(opts: StackOptions, prefix: str = "karung-bench-") -> Iterator[Stack]:
    """Start the image server and ``karung serve`` over fresh JPEGs; stop them on exit.

    Raises:
        BenchError: the model is missing or the service did not come up.
    """
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp_name:
        tmp = Path(tmp_name)
        names = make_images(tmp / "images", opts.images, opts.width, opts.height, opts.photos)
        image_port, service_port = free_port(), free_port()
        procs: list[subprocess.Popen[bytes]] = []
        try:
            model, note = bench_model(opts.model, tmp)
            procs.append(_image_server(tmp / "images", image_port, tmp))
            procs.append(_service(opts, model, service_port, tmp))
            base = f"http://127.0.0.1:{service_port}"
            backend = _wait_ready(base, procs[1], tmp, opts.workers)
            urls = [f"http://127.0.0.1:{image_port}/{name}" for name in names]
            yield Stack(tmp, base, urls, names, backend, model, note, procs[0], procs[1])
        finally:
            for proc in procs:
                stop(proc)


def _image_server(folder: Path, port: int, tmp: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "karung.serve.bench.imageserver", str(folder), str(port)]
    log = (tmp / "images.log").open("wb")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)


def _service(opts: StackOptions, model: Path, port: int, tmp: Path) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable, "-m", "karung.cli.main", "serve", "--port", str(port),
        "--model", str(model), "--backend", opts.backend, "--allow-private-networks",
        "--data-dir", str(tmp / "data"), "--workers", str(opts.workers),
    ]  # fmt: skip
    env = {**os.environ, "KARUNG_ADMIN_KEY": ADMIN_KEY, "KARUNG_LOG_LEVEL": "WARNING"}
    if opts.threads:
        env["KARUNG_INFERENCE_THREADS"] = str(opts.threads)
    log = (tmp / "service.log").open("wb")
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)


def _wait_ready(base: str, proc: subprocess.Popen[bytes], tmp: Path, workers: int) -> str:
    """Wait until every worker has loaded the model; return the backend in use."""
    import httpx

    deadline = time.monotonic() + READY_SECONDS
    ready: dict[int, str] = {}
    while len(ready) < workers:
        if proc.poll() is not None:
            log = (tmp / "service.log").read_text(errors="replace")[-2000:]
            raise BenchError(f"the service exited early:\n{log}")
        if time.monotonic() > deadline:
            raise BenchError(f"the service did not load its model within {READY_SECONDS} s")
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


def stop(proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """Terminate ``proc`` (kill it after ``timeout`` s) and reap it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _proc_stats() -> dict[int, list[str]]:
    """``/proc/PID/stat`` fields after the process name, of every live process."""
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stats[int(entry.name)] = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # the process ended meanwhile
    return stats


def process_cpu_seconds(pid: int, descendants: bool = True, reaped: bool = False) -> float:
    """User + system CPU seconds of ``pid`` and (by default) its live descendants: the
    service's image workers are child processes. ``reaped`` adds the children each process
    has already waited for (Ray's actors exit before a backfill ends). NaN without ``pid``."""
    stats = _proc_stats()
    if pid not in stats:
        return float("nan")
    family, grew = {pid}, True
    while grew and descendants:
        found = {p for p, f in stats.items() if int(f[1]) in family} - family
        family, grew = family | found, bool(found)
    fields = (11, 12, 13, 14) if reaped else (11, 12)  # utime, stime[, cutime, cstime]
    ticks = sum(int(stats[p][i]) for p in family for i in fields)
    return ticks / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(pids: tuple[int, int]) -> list[float]:
    """CPU seconds of the service (with its workers), the image server and this driver alone
    (its descendants are the other two)."""
    own = process_cpu_seconds(os.getpid(), descendants=False)
    return [*(process_cpu_seconds(pid) for pid in pids), own]


def worker_peaks(serve_pid: int) -> dict[int, float]:
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
