"""A hardened image fetcher for URLs chosen by untrusted sellers.

Threat model: a URL in a listing may point at the service's own network (cloud metadata at
169.254.169.254, an admin panel on 10.x, the service itself on 127.0.0.1) or at a server that
answers slowly, endlessly or with something other than an image. So:

* only ``http`` and ``https``; no credentials in the URL;
* the host is resolved once, every address is vetted (loopback, private, link-local, multicast,
  reserved, unspecified, and IPv4 embedded in IPv6 are refused), and the connection goes to the
  vetted address itself, so a second DNS answer cannot swap in a private address (rebinding);
  numeric hosts are parsed the way ``inet_aton`` does (``2130706433``, ``0x7f000001``,
  ``017700000001``, ``127.1``), so no spelling sneaks past the filter;
* every redirect is vetted again, at most ``max_redirects`` of them;
* connect, per-read and total timeouts; the body is streamed with a byte cap;
* the format is judged by magic bytes (:func:`karung.vision.decode.sniff_format`), never by
  ``Content-Type``.

The HTTP/1.1 client is a few lines of :mod:`h11` over :func:`asyncio.open_connection`, which
keeps full control of where the socket connects and what the TLS layer verifies (SNI and the
certificate name are the URL's host name, the TCP peer is the vetted IP).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import quote, urljoin, urlsplit

import h11

from karung.errors import KarungError
from karung.serve.fairness import KeySlots
from karung.vision.decode import sniff_format
from karung.vision.errors import EmptyInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

MAX_URL_LENGTH: Final = 4096
REDIRECT_CODES: Final = frozenset({301, 302, 303, 307, 308})
CHUNK: Final = 256 * 1024
SNIFF_BYTES: Final = 512
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL: Final = ipaddress.IPv6Network("64:ff9b:1::/48")
_IPV4_PART: Final = re.compile(r"^(0x[0-9a-f]+|0[0-7]*|[1-9][0-9]*)$", re.IGNORECASE)
_HOST_CHARS: Final = re.compile(r"^[a-z0-9.\-_]+$", re.IGNORECASE)


class FetchError(KarungError, code="fetch_error", status=422):
    """Base of every fetch failure; ``code`` is stable and reported to API clients."""


class UrlInvalid(FetchError, code="url_invalid"):
    """The URL cannot be parsed or carries things we do not accept (credentials, bad host)."""


class UrlScheme(FetchError, code="url_scheme"):
    """Only http and https are fetched."""


class AddressForbidden(FetchError, code="address_forbidden"):
    """The host is, or resolves to, an address the service must not reach."""


class DnsFailed(FetchError, code="dns_failed"):
    """The host name does not resolve."""


class ConnectFailed(FetchError, code="connect_failed"):
    """No vetted address accepted a connection."""


class TlsFailed(FetchError, code="tls_error"):
    """The TLS handshake or certificate check failed."""


class FetchTimeout(FetchError, code="fetch_timeout"):
    """A connect, read or total timeout expired."""


class TooLarge(FetchError, code="too_large"):
    """The body is larger than the byte cap."""


class HttpStatus(FetchError, code="http_status"):
    """The server answered with a status other than 200."""

    def __init__(self, status: int) -> None:
        super().__init__(f"server answered HTTP {status}")
        self.status = status


class TooManyRedirects(FetchError, code="too_many_redirects"):
    """More redirects than allowed."""


class BadResponse(FetchError, code="bad_response"):
    """The server spoke broken HTTP."""


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
class Target:
    """A parsed, normalised URL ready to request."""

    url: str
    scheme: str
    host: str  # IDNA-encoded name or the canonical IP text
    port: int
    path: str  # path and query, percent-encoded
    literal: IPAddress | None = None

    @property
    def host_header(self) -> str:
        """The ``Host`` header: name (IPv6 in brackets) plus the port when not the default."""
        host = f"[{self.host}]" if isinstance(self.literal, ipaddress.IPv6Address) else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


@dataclass(frozen=True)
class FetchResult:
    """A fetched image body and where it finally came from."""

    data: bytes
    url: str
    redirects: int = 0
    address: str = ""
    content_type: str | None = None
    hops: tuple[str, ...] = field(default_factory=tuple)


# --- addresses --------------------------------------------------------------------------------


def parse_ipv4_loose(host: str) -> ipaddress.IPv4Address | None:
    """Parse ``host`` the way ``inet_aton`` does: 1-4 parts, decimal, ``0x`` hex or ``0`` octal.

    The last part fills the remaining bytes, so ``127.1`` is 127.0.0.1 and ``2130706433`` is too.
    Returns ``None`` when ``host`` is not such a number.
    """
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(_IPV4_PART.match(p) for p in parts):
        return None
    nums = [_ipv4_part(p) for p in parts]
    *head, last = nums
    if any(n > 255 for n in head) or last >= 1 << (8 * (5 - len(nums))):
        return None
    value = last
    for i, n in enumerate(head):
        value |= n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def _ipv4_part(text: str) -> int:
    if text[:2].lower() == "0x":
        return int(text[2:], 16)
    if len(text) > 1 and text[0] == "0":
        return int(text[1:], 8)
    return int(text)


def forbidden_reason(addr: IPAddress) -> str | None:
    """Why ``addr`` must not be fetched from, or ``None`` when it is a global unicast address."""
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.scope_id:
            return "scoped IPv6 address"
        embedded = embedded_ipv4(addr)
        if embedded is not None:
            inner = forbidden_reason(embedded)
            if inner is not None:
                return f"embeds {embedded} ({inner})"
    for prop in ("loopback", "private", "link_local", "multicast", "reserved", "unspecified"):
        if getattr(addr, f"is_{prop}"):
            return prop.replace("_", "-")
    if not addr.is_global:
        return "not globally routable"
    return None


def embedded_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address carried by an IPv4-mapped, 6to4, Teredo or NAT64 IPv6 address."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr.teredo is not None:
        return addr.teredo[1]
    if addr in _NAT64 or addr in _NAT64_LOCAL:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


class AddressPolicy:
    """Decides which IP addresses the fetcher may connect to."""

    def __init__(self, allow_private: bool, allowed_networks: Sequence[str] = ()) -> None:
        self.allow_private = allow_private
        self.allowed = tuple(ipaddress.ip_network(n, strict=False) for n in allowed_networks)

    def check(self, addr: IPAddress) -> None:
        """Raise :class:`AddressForbidden` unless ``addr`` may be reached."""
        # Even local demos never connect to "any" or a multicast group.
        if addr.is_unspecified or addr.is_multicast:
            raise AddressForbidden(f"{addr} is not a unicast address")
        if self.allow_private or any(addr in net for net in self.allowed):
            return
        reason = forbidden_reason(addr)
        if reason is not None:
            raise AddressForbidden(f"{addr} is {reason}")


# --- URLs -------------------------------------------------------------------------------------


def parse_url(url: str) -> Target:
    """Validate and normalise ``url``; raise :class:`UrlInvalid` or :class:`UrlScheme`."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise UrlInvalid("URL is empty or longer than 4096 characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise UrlInvalid("URL contains control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlInvalid(f"cannot parse URL: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UrlScheme(f"scheme {scheme or '(none)'!r} is not http or https")
    if parts.username is not None or parts.password is not None:
        raise UrlInvalid("credentials in URLs are not accepted")
    host, literal = _parse_host(parts.hostname or "")
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    if parts.query:
        path += "?" + quote(parts.query, safe="/%:@!$&'()*+,;=-._~?")
    default_port = 443 if scheme == "https" else 80
    return Target(url, scheme, host, port or default_port, path, literal)


def _parse_host(raw: str) -> tuple[str, IPAddress | None]:
    host = raw.rstrip(".").lower()
    if not host:
        raise UrlInvalid("URL has no host")
    if ":" in host:
        try:
            v6 = ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise UrlInvalid(f"bad IPv6 literal {host!r}") from exc
        return str(v6), v6
    v4 = parse_ipv4_loose(host)
    if v4 is not None:
        return str(v4), v4
    try:
        encoded = host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise UrlInvalid(f"bad host name {host!r}") from exc
    if not _HOST_CHARS.match(encoded) or len(encoded) > 253:
        raise UrlInvalid(f"bad host name {host!r}")
    return encoded, None


# --- resolution -------------------------------------------------------------------------------


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve ``host`` with the system resolver (in a thread, via the event loop)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise DnsFailed(f"cannot resolve {host!r}: {exc}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


# --- the fetcher ------------------------------------------------------------------------------


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
