"""Support code of the service tests: a hostile image server, services in process or on a socket.

Imported by the tests as ``serve.servekit`` (``tests`` is on ``pythonpath``).
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from imagegen import encode, textured
from kit.live import start_in_process, start_uvicorn

from karung.serve.settings import Settings

ADMIN_KEY = "krg_test_admin_key_0123456789abcdef"


def jpeg(seed: int = 0, width: int = 64, height: int = 48) -> bytes:
    """A small generated JPEG."""
    return encode(textured(width, height, seed), "JPEG", quality=85)


@dataclass
class ImageServer:
    """A real HTTP server on 127.0.0.1 with well-behaved and hostile endpoints."""

    port: int
    hosts: dict[str, str] = field(default_factory=dict)  # path -> Host header seen
    hits: dict[str, int] = field(default_factory=dict)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        """Absolute URL of ``path`` on this server."""
        return f"http://{host}:{self.port}{path}"


def _handler(state: ImageServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:
            parsed = urllib.parse.urlsplit(self.path)
            state.hosts[parsed.path] = self.headers.get("Host", "")
            state.hits[parsed.path] = state.hits.get(parsed.path, 0) + 1
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._route(parsed.path, urllib.parse.parse_qs(parsed.query))

        def _send(self, status: int, body: bytes, ctype: str = "image/jpeg", **hdr: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for name, value in hdr.items():
                self.send_header(name.replace("_", "-"), value)
            self.end_headers()
            self.wfile.write(body)

        def _route(self, path: str, query: dict[str, list[str]]) -> None:
            parts = path.strip("/").split("/")
            head = parts[0]
            if head == "img":  # /img/<seed>.jpg
                self._send(200, jpeg(int(parts[1].split(".")[0])))
            elif head == "delay":  # /delay/<ms>/<seed>.jpg
                time.sleep(int(parts[1]) / 1000)
                self._send(200, jpeg(int(parts[2].split(".")[0])))
            elif head == "html":  # HTML that lies about its type
                self._send(200, b"<!doctype html><html><body>" + b"x" * 2000, "image/jpeg")
            elif head == "corrupt.jpg":
                self._send(200, b"\xff\xd8\xff\xe0" + b"\x13" * 3000)
            elif head == "empty":
                self._send(200, b"")
            elif head == "redirect":  # /redirect?to=<url>
                self._send(302, b"", "text/plain", Location=query["to"][0])
            elif head == "hops":  # /hops/<n>: n redirects, then an image
                n = int(parts[1])
                if n == 0:
                    self._send(200, jpeg(7))
                else:
                    self._send(302, b"", "text/plain", Location=f"/hops/{n - 1}")
            elif head == "status":
                self._send(int(parts[1]), b"nope", "text/plain")
            elif head == "declared-huge":  # a Content-Length over the cap, no body sent
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(50 * 1024 * 1024))
                self.end_headers()
            elif head == "stream-huge":  # no Content-Length: the cap must trip while streaming
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(b"\xff\xd8\xff\xe0")
                for _ in range(200):
                    self.wfile.write(b"\x00" * 65536)
                self.close_connection = True
            elif head == "slow":  # headers at once, then silence
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", "5000")
                self.end_headers()
                self.wfile.write(b"\xff\xd8\xff\xe0")
                self.wfile.flush()
                time.sleep(3)
            else:
                self._send(404, b"not found", "text/plain")

    return Handler


def serve_images() -> tuple[ImageServer, Callable[[], None]]:
    """Start the image server in a thread; return its state and a stop function."""
    state = ImageServer(0)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.port = httpd.server_address[1]
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        httpd.shutdown()
        httpd.server_close()

    return state, stop


@dataclass
class LiveService:
    """A running service: in process (``base_url`` is TestClient's) or under uvicorn on a free
    loopback port. ``connect`` makes an HTTP client on it."""

    app: FastAPI
    base_url: str
    connect: Callable[..., httpx.Client]

    def client(
        self, key: str | None = ADMIN_KEY, timeout: float = 30.0, **headers: str
    ) -> httpx.Client:
        """An HTTP client, authenticated with ``key`` unless ``None``, with extra ``headers``."""
        if key:
            headers = {"Authorization": f"Bearer {key}", **headers}
        return self.connect(headers=headers, timeout=timeout)


def start_service(app: FastAPI) -> tuple[LiveService, Callable[[], None]]:
    """Run ``app`` under uvicorn on a real loopback socket; return it and a stop function."""
    url, stop = start_uvicorn(app, proxy_headers=False)
    return LiveService(app, url, functools.partial(httpx.Client, base_url=url)), stop


def start_local_service(app: FastAPI) -> tuple[LiveService, Callable[[], None]]:
    """Run ``app`` in process (no socket); return it and a stop function."""
    url, connect, stop = start_in_process(app)
    return LiveService(app, url, connect), stop


def service_settings(tmp: Path, model: Path, **overrides: Any) -> Settings:
    """Settings for a test service: its own SQLite, the tiny model, no random QC sampling."""
    values: dict[str, Any] = {
        "data_dir": tmp,
        "model": model,
        "backend": "torch",
        "admin_key": ADMIN_KEY,
        "allow_private_networks": True,
        "review_sample_allow": 0.0,
        "review_sample_block": 0.0,
        "fetch_read_timeout": 1.0,
        "fetch_total_timeout": 5.0,
        "fetch_max_bytes": 1024 * 1024,
        "bank_poll_seconds": 0.2,
        "decode_workers": 2,
    }
    values.update(overrides)
    return Settings(**values)
