"""A lean static image server for ``karung bench serve`` and ``hostile``: the platform's CDN.

In production the images come from a CDN on other machines; on the benchmark's two cores the
image server competes with the service for CPU, so it should cost as little as possible.
``python -m http.server`` spends about a millisecond of Python per request (it reads the file
and copies it in 64 KB chunks); this server holds every file in memory and answers each
``GET`` with one ``write``. It is for loopback benchmarks only: no directory listing, no
ranges, ``GET``/``HEAD`` of known names only.

Run: ``python -m karung.serve.bench.imageserver DIR PORT``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}
_MAX_HEAD = 16 * 1024


def load_files(folder: Path) -> dict[str, tuple[bytes, bytes]]:
    """Map ``/name`` to (response head, body) for every image file in ``folder``."""
    files: dict[str, tuple[bytes, bytes]] = {}
    for path in sorted(folder.iterdir()):
        kind = _TYPES.get(path.suffix.lower())
        if kind is None or not path.is_file():
            continue
        body = path.read_bytes()
        head = (
            f"HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode("ascii")
        files["/" + path.name] = (head, body)
    return files


_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def handler(files: dict[str, tuple[bytes, bytes]]) -> Handler:
    """The connection callback: one request per connection, answered from memory."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            if len(head) > _MAX_HEAD:
                return
            method, _, rest = head.partition(b" ")
            target = rest.partition(b" ")[0].decode("latin-1").split("?", 1)[0]
            found = files.get(target)
            if found is None or method not in (b"GET", b"HEAD"):
                writer.write(_NOT_FOUND)
            else:
                writer.write(found[0] if method == b"HEAD" else found[0] + found[1])
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    return handle


async def serve(folder: Path, port: int) -> None:
    """Serve ``folder`` on 127.0.0.1:``port`` until cancelled."""
    files = load_files(folder)
    server = await asyncio.start_server(handler(files), "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``DIR PORT``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m karung.serve.bench.imageserver DIR PORT", file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(Path(args[0]), int(args[1])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
