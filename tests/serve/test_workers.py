"""``karung serve --workers 2`` as real processes on one port: one admin key, metrics summed over
the workers, a model swap that reaches every worker, a clean stop."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from kit.live import free_port
from kit.live import stop_process as stop
from serve.servekit import ADMIN_KEY, jpeg

HEADERS = {"Authorization": f"Bearer {ADMIN_KEY}"}


def start_workers(data: Path, model: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KARUNG_")}
    env.update(KARUNG_DATA_DIR=str(data), KARUNG_ADMIN_KEY=ADMIN_KEY,
               KARUNG_MODEL_POLL_SECONDS="0.2", KARUNG_DECODE_WORKERS="1")  # fmt: skip
    cmd = [sys.executable, "-m", "karung.cli.main", "serve", "--port", str(port),
           "--model", str(model), "--backend", "torch", "--workers", "2"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}"


def model_of_each_worker(base: str, deadline: float, answers: list[int]) -> dict[int, str]:
    """GET /v1/admin/model on fresh connections until both workers have answered; the pid of
    every answer is appended to ``answers``."""
    seen: dict[int, str] = {}
    while len(seen) < 2 and time.monotonic() < deadline:
        try:
            body = httpx.get(f"{base}/v1/admin/model", headers=HEADERS).json()
        except httpx.HTTPError:
            time.sleep(0.2)
            continue
        answers.append(body["worker"]["pid"])
        seen[body["worker"]["pid"]] = body["model"]["model_version"]
    return seen


def counter(text: str, pattern: str) -> float:
    return sum(float(m.group(1)) for m in re.finditer(pattern + r" ([0-9.e+]+)\n", text))


@pytest.mark.slow
def test_two_workers_share_a_port_metrics_and_model_swaps(
    tmp_path: Path, model_dirs: tuple[Path, Path]
) -> None:
    proc, base = start_workers(tmp_path / "data", model_dirs[0], tmp_path / "serve.log")
    try:
        answers: list[int] = []
        workers = model_of_each_worker(base, time.monotonic() + 120, answers)
        assert len(workers) == 2, (tmp_path / "serve.log").read_text()
        assert len(set(workers.values())) == 1
        assert "krg_" not in (tmp_path / "serve.log").read_text()  # the key was supplied
        gets = counter(httpx.get(f"{base}/metrics").text,
                       r'karung_http_requests_total\{method="GET",route="/v1/admin/model",'
                       r'status="200"\}')  # fmt: skip
        assert gets == len(answers)  # both workers' requests, whichever worker answered

        swap = httpx.post(f"{base}/v1/admin/model", headers=HEADERS, timeout=60,
                          json={"path": str(model_dirs[1])})  # fmt: skip
        assert swap.status_code == 200, swap.text
        new = swap.json()["model"]["model_version"]
        assert new not in workers.values()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if set(model_of_each_worker(base, deadline, answers).values()) == {new}:
                break
        assert set(model_of_each_worker(base, time.monotonic() + 30, answers).values()) == {new}

        image = base64.b64encode(jpeg(3)).decode()
        scored = httpx.post(f"{base}/v1/score", headers=HEADERS, timeout=60,
                            json={"items": [{"image_base64": image}]}).json()  # fmt: skip
        assert scored["items"][0]["status"] == "ok"
        assert scored["items"][0]["model_version"] == new
    finally:
        stop(proc)
    assert proc.returncode == 0
    for pid in workers:  # the supervisor took its workers down with it
        assert not Path(f"/proc/{pid}").exists()
