"""The benchmark's image server answers real HTTP from memory, as the hardened fetcher sees it."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from imagegen import encode, textured
from kit.live import free_port

from karung.serve.fetch import Fetcher, FetchLimits
from karung.serve.fetch_errors import HttpStatus

LOOPBACK = FetchLimits(allow_private=True)


def _wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the image server exited early")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the image server did not start listening")


def test_serves_files_byte_for_byte_and_404s_unknown_names(tmp_path: Path) -> None:
    photo = encode(textured(80, 60, 3), "JPEG", quality=90)
    (tmp_path / "photo.jpg").write_bytes(photo)
    (tmp_path / "notes.txt").write_text("not served")
    port = free_port()
    cmd = [sys.executable, "-m", "karung.serve.bench.imageserver", str(tmp_path), str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_listening(port, proc)
        base = f"http://127.0.0.1:{port}"

        async def fetch_all() -> bytes:
            fetcher = Fetcher(LOOPBACK)
            got = await asyncio.gather(*(fetcher.fetch(f"{base}/photo.jpg") for _ in range(8)))
            assert all(r.data == got[0].data for r in got)
            for missing in ("/notes.txt", "/nope.jpg"):
                with pytest.raises(HttpStatus) as caught:
                    await fetcher.fetch(base + missing)
                assert caught.value.status == 404
            return got[0].data

        assert asyncio.run(fetch_all()) == photo
    finally:
        proc.terminate()
        proc.wait(timeout=10)
