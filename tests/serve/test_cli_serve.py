"""``karung serve`` as a real process: first start prints an admin key once, which then works."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from kit.live import free_port
from kit.live import stop_process as stop


def start(data_dir: Path, model: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KARUNG_")}
    env["KARUNG_DATA_DIR"] = str(data_dir)
    cmd = [sys.executable, "-m", "karung.cli.main", "serve", "--port", str(port),
           "--model", str(model), "--backend", "torch"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"karung serve exited: {log.read_text()}")
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    pytest.fail("karung serve did not start")


@pytest.mark.slow
def test_first_start_prints_a_working_admin_key_once(
    tmp_path: Path, model_dirs: tuple[Path, Path]
) -> None:
    data = tmp_path / "data"
    proc, base = start(data, model_dirs[0], tmp_path / "first.log")
    try:
        output = (tmp_path / "first.log").read_text()
        keys = [w for w in output.split() if w.startswith("krg_")]
        assert len(keys) == 1, output
        headers = {"Authorization": f"Bearer {keys[0]}"}
        model = httpx.get(f"{base}/v1/admin/model", headers=headers).json()["model"]
        assert model["backend"] == "torch"
        assert '"logger": "karung.access"' in (tmp_path / "first.log").read_text()
    finally:
        stop(proc)
    assert (data / "karung.db").is_file()
    proc, base = start(data, model_dirs[0], tmp_path / "second.log")
    try:
        assert "krg_" not in (tmp_path / "second.log").read_text()  # shown only once
        headers = {"Authorization": f"Bearer {keys[0]}"}
        assert httpx.get(f"{base}/v1/admin/keys", headers=headers).status_code == 200
    finally:
        stop(proc)
    assert keys[0] not in (tmp_path / "second.log").read_text()
