"""A hardened image fetcher for URLs chosen by untrusted sellers: the streaming HTTP client.

Threat model: a URL in a listing may point at the service's own network or at a server that
answers slowly, endlessly or with something other than an image. So:

* the URL is parsed and every resolved address vetted by :mod:`karung.serve.fetch_targets`, and
  the connection goes to the vetted address itself, so a second DNS answer cannot swap in a
  private address (rebinding);
* every redirect is vetted again, at most ``max_redirects`` of them;
* connect, per-read and total timeouts; the body is streamed with a byte cap;
* the format is judged by magic bytes (:func:`karung.vision.decode.sniff_format`), never by
  ``Content-Type``.

The HTTP/1.1 client is a few lines of :mod:`h11` over :func:`asyncio.open_connection`, which
keeps full control of where the socket connects and what the TLS layer verifies (SNI and the
certificate name are the URL's host name, the TCP peer is the vetted IP). Failures are the
:mod:`karung.serve.fetch_errors` classes.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urljoin

import h11

from karung.serve.fairness import KeySlots
from karung.serve.fetch_errors import (
    AddressForbidden,
    BadResponse,
    ConnectFailed,
    DnsFailed,
    FetchTimeout,
    HttpStatus,
    TlsFailed,
    TooLarge,
    TooManyRedirects,
)
from karung.serve.fetch_targets import (
    AddressPolicy,
    IPAddress,
    Resolver,
    Target,
    parse_url,
    system_resolver,
)
from karung.vision.decode import sniff_format
from karung.vision.errors import EmptyInput

REDIRECT_CODES: Final = frozenset({301, 302, 303, 307, 308})
CHUNK: Final = 256 * 1024
SNIFF_BYTES: Final = 512


@dataclass(frozen=True)
class FetchLimits:
    """Safety limits of the fetcher (built from :class:`karung.serve.settings.Settings`)."""

    max_bytes: int = 10 * 1024 * 1024
    connect_timeout: float = 3.0
    read_timeout: float = 5.0
    total_timeout: float = 10.0
    key_share: float = 0.25  # the share of the concurrency one API key may hold
    max_redirects: int = 3
    concurrency: int = 64
    allow_private: bool = False
    allowed_networks: tuple[str, ...] = ()
    user_agent: str = "karung-fetcher"


@dataclass(frozen=True)
class FetchResult:
    """A fetched image body and where it finally came from."""

    data: bytes
    url: str
    redirects: int = 0
    address: str = ""
    content_type: str | None = None
    hops: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class _Redirect:
    location: str


class Fetcher:
    """Fetch image bytes from untrusted URLs under :class:`FetchLimits`.

    Args:
        limits: byte cap, timeouts, redirects, concurrency and the address policy switches.
        resolver: ``async (host, port) -> [ip, ...]``; injectable so tests can map names.
        ssl_context: TLS settings (default: the system's verified defaults).
        on_slots: called with ``(key, in_flight)`` when a key's fetch count changes.
    """

    def __init__(
        self,
        limits: FetchLimits,
        resolver: Resolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
        on_slots: Callable[[str, int], None] | None = None,
    ) -> None:
        self.limits = limits
        self.policy = AddressPolicy(limits.allow_private, limits.allowed_networks)
        self._resolver: Resolver = resolver or system_resolver
        self._ssl = ssl_context or ssl.create_default_context()
        self.slots = KeySlots(limits.concurrency, limits.key_share, on_slots)

    async def fetch(self, url: str, key: str | None = None) -> FetchResult:
        """Fetch ``url`` following at most ``max_redirects`` vetted redirects, in one of
        ``key``'s fetch slots (its share of them); the total timeout covers the wait.

        Raises:
            FetchError subclasses, :class:`karung.vision.errors.UnsupportedFormat` when the
            body is not an image, :class:`karung.vision.errors.EmptyInput` when it is empty.
        """
        try:
            async with asyncio.timeout(self.limits.total_timeout), self.slots.hold(key):
                return await self._follow(url)
        except TimeoutError as exc:
            raise FetchTimeout(
                f"no complete answer within {self.limits.total_timeout}s (slot wait included)"
            ) from exc

    async def _follow(self, url: str) -> FetchResult:
        hops: list[str] = []
        current = url
        while True:
            target = parse_url(current)
            addrs = await self.vet(target)
            outcome = await self._request(target, addrs)
            if isinstance(outcome, FetchResult):
                return FetchResult(
                    outcome.data,
                    current,
                    len(hops),
                    outcome.address,
                    outcome.content_type,
                    tuple(hops),
                )
            hops.append(current)
            if len(hops) > self.limits.max_redirects:
                raise TooManyRedirects(f"more than {self.limits.max_redirects} redirects")
            current = urljoin(current, outcome.location)

    async def vet(self, target: Target) -> list[IPAddress]:
        """Resolve ``target``'s host once and return its addresses if every one is allowed."""
        if target.literal is not None:
            self.policy.check(target.literal)
            return [target.literal]
        try:
            async with asyncio.timeout(self.limits.connect_timeout):
                answers = await self._resolver(target.host, target.port)
        except TimeoutError as exc:
            raise FetchTimeout(f"resolving {target.host!r} took too long") from exc
        if not answers:
            raise DnsFailed(f"{target.host!r} has no addresses")
        addrs = [ipaddress.ip_address(a.split("%", 1)[0]) for a in answers]
        # One bad answer condemns the name: a mix of public and private is an attack pattern.
        for addr in addrs:
            try:
                self.policy.check(addr)
            except AddressForbidden as exc:
                raise AddressForbidden(f"{target.host} resolves to {exc}") from exc
        return addrs

    async def _request(self, target: Target, addrs: list[IPAddress]) -> FetchResult | _Redirect:
        reader, writer, address = await self._connect(target, addrs)
        try:
            conn = h11.Connection(h11.CLIENT)
            writer.write(conn.send(self._request_line(target)) + conn.send(h11.EndOfMessage()))
            await writer.drain()
            response = await self._next_event(conn, reader)
            while isinstance(response, h11.InformationalResponse):  # 100 Continue and friends
                response = await self._next_event(conn, reader)
            if not isinstance(response, h11.Response):
                raise BadResponse(f"expected a response, got {type(response).__name__}")
            headers = {
                k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.headers
            }
            if response.status_code in REDIRECT_CODES and "location" in headers:
                return _Redirect(headers["location"])
            if response.status_code != 200:
                raise HttpStatus(response.status_code)
            body = await self._read_body(conn, reader, headers)
            return FetchResult(
                body, target.url, address=address, content_type=headers.get("content-type")
            )
        except h11.ProtocolError as exc:
            raise BadResponse(f"broken HTTP from {target.host}: {exc}") from exc
        finally:
            writer.close()

    def _request_line(self, target: Target) -> h11.Request:
        return h11.Request(
            method="GET",
            target=target.path,
            headers=[
                ("Host", target.host_header),
                ("User-Agent", self.limits.user_agent),
                ("Accept", "image/*"),
                ("Accept-Encoding", "identity"),
                ("Connection", "close"),
            ],
        )

    async def _connect(
        self, target: Target, addrs: list[IPAddress]
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, str]:
        """Connect to the first vetted address that answers (never re-resolving the name)."""
        tls = self._ssl if target.scheme == "https" else None
        last: Exception | None = None
        for addr in addrs:
            try:
                async with asyncio.timeout(self.limits.connect_timeout):
                    reader, writer = await asyncio.open_connection(
                        str(addr),
                        target.port,
                        ssl=tls,
                        server_hostname=target.host if tls else None,
                        limit=CHUNK * 2,
                    )
                return reader, writer, str(addr)
            except ssl.SSLError as exc:
                raise TlsFailed(f"TLS with {target.host} failed: {exc}") from exc
            except (OSError, TimeoutError) as exc:
                last = exc
        if isinstance(last, TimeoutError):
            raise FetchTimeout(f"connecting to {target.host} took too long") from last
        raise ConnectFailed(f"cannot connect to {target.host}:{target.port}: {last}") from last

    async def _next_event(self, conn: h11.Connection, reader: asyncio.StreamReader) -> object:
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            conn.receive_data(await self._read(reader))

    async def _read(self, reader: asyncio.StreamReader, size: int = CHUNK) -> bytes:
        try:
            async with asyncio.timeout(self.limits.read_timeout):
                return await reader.read(size)
        except TimeoutError as exc:
            raise FetchTimeout(f"server sent nothing for {self.limits.read_timeout}s") from exc

    async def _read_body(
        self, conn: h11.Connection, reader: asyncio.StreamReader, headers: dict[str, str]
    ) -> bytes:
        """Read the body under the byte cap, giving up early on a non-image prefix."""
        cap = self.limits.max_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise TooLarge(f"Content-Length {declared} exceeds the cap of {cap} bytes")
        if declared.isdigit() and "transfer-encoding" not in headers:
            body = await self._read_exact(conn, reader, int(declared))
        else:
            body = await self._read_framed(conn, reader)
        if not body:
            raise EmptyInput("the server sent an empty body")
        sniff_format(body)
        return body

    async def _read_exact(
        self, conn: h11.Connection, reader: asyncio.StreamReader, length: int
    ) -> bytes:
        """Fast path for ``Content-Length`` bodies (already under the cap): h11 parsed the head,
        the body is copied straight from the socket instead of event by event."""
        buf = bytearray(conn.trailing_data[0][:length])
        sniffed = False
        while len(buf) < length:
            chunk = await self._read(reader, min(CHUNK, length - len(buf)))
            if not chunk:
                raise BadResponse(f"connection closed after {len(buf)} of {length} bytes")
            buf += chunk
            if not sniffed and len(buf) >= SNIFF_BYTES:
                sniff_format(bytes(buf[:SNIFF_BYTES]))  # HTML and friends stop here
                sniffed = True
        return bytes(buf)

    async def _read_framed(self, conn: h11.Connection, reader: asyncio.StreamReader) -> bytes:
        """Chunked or close-delimited bodies, framed by h11, counted against the cap."""
        cap = self.limits.max_bytes
        chunks: list[bytes] = []
        size = 0
        sniffed = False
        while True:
            event = await self._next_event(conn, reader)
            if isinstance(event, h11.EndOfMessage):
                return b"".join(chunks)
            if not isinstance(event, h11.Data):
                raise BadResponse(f"unexpected {type(event).__name__} in the body")
            chunks.append(bytes(event.data))
            size += len(event.data)
            if size > cap:
                raise TooLarge(f"body exceeds the cap of {cap} bytes")
            if not sniffed and size >= SNIFF_BYTES:
                sniff_format(b"".join(chunks))  # HTML and friends stop here, not at the cap
                sniffed = True
