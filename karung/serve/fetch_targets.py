"""Where the fetcher may connect: URL parsing, address vetting and name resolution.

A URL in a listing is chosen by an untrusted seller and may point at the service's own network
(cloud metadata at 169.254.169.254, an admin panel on 10.x, the service itself on 127.0.0.1).
This module turns a URL into a normalised :class:`Target` (only ``http`` and ``https``, no
credentials, IDNA host names) and decides which IP addresses may be reached
(:class:`AddressPolicy`: loopback, private, link-local, multicast, reserved, unspecified and IPv4
embedded in IPv6 are refused). Numeric hosts are parsed the way ``inet_aton`` does
(``2130706433``, ``0x7f000001``, ``017700000001``, ``127.1``), so no spelling sneaks past the
filter. :class:`karung.serve.fetch.Fetcher` resolves a name once, vets every answer and connects
to the vetted address itself.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, urlsplit

from karung.serve.fetch_errors import AddressForbidden, DnsFailed, UrlInvalid, UrlScheme

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

MAX_URL_LENGTH: Final = 4096
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL: Final = ipaddress.IPv6Network("64:ff9b:1::/48")
_IPV4_PART: Final = re.compile(r"^(0x[0-9a-f]+|0[0-7]*|[1-9][0-9]*)$", re.IGNORECASE)
_HOST_CHARS: Final = re.compile(r"^[a-z0-9.\-_]+$", re.IGNORECASE)


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
