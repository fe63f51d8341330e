"""Running an app for a test: in process (Starlette's TestClient) or on a real loopback socket.

Use :func:`start_in_process` unless the test needs what only a socket gives: the peer address,
raw bytes on the wire, slow or partial bodies, or a second process (``karung serve``, replicas).
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from karung.serve.bench.harness import free_port as free_port
from karung.serve.bench.harness import stop


def start_uvicorn(app: Any, **config: Any) -> tuple[str, Callable[[], None]]:
    """Run ``app`` under uvicorn in a thread on a free 127.0.0.1 port; return its URL and a stop
    function. ``config`` goes to ``uvicorn.Config``."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    settings = {"log_config": None, "access_log": False, "lifespan": "on", **config}
    server = uvicorn.Server(uvicorn.Config(app, **settings))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the service did not start")
        time.sleep(0.05)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()

    return f"http://127.0.0.1:{sock.getsockname()[1]}", stop


def start_in_process(
    app: FastAPI,
) -> tuple[str, Callable[..., httpx.Client], Callable[[], None]]:
    """Run ``app``'s lifespan once, in process; return its base URL, a factory of clients that
    share it (``connect(headers=..., timeout=...)``) and a stop function.

    Every client goes through the one running app (no socket), so per-key or per-user clients
    see the same state.
    """
    runner = TestClient(app)
    runner.__enter__()
    transport = runner._transport  # the portal-bound transport of the running lifespan
    base_url = str(runner.base_url)

    def connect(**kwargs: Any) -> httpx.Client:
        return httpx.Client(transport=transport, base_url=base_url, **kwargs)

    return base_url, connect, lambda: runner.__exit__(None, None, None)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM a ``karung serve`` process and wait for it (SIGKILL after 30 s)."""
    stop(proc, timeout=30)
