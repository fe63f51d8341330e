"""The hardened fetcher against a real local HTTP server: SSRF matrix, caps, timeouts, formats."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from typing import Any

import pytest
from serve.servekit import ImageServer, jpeg

from karung.serve.fetch import Fetcher, FetchLimits, FetchResult
from karung.serve.fetch_errors import DnsFailed
from karung.serve.fetch_targets import parse_ipv4_loose, parse_url
from karung.vision.errors import EmptyInput, UnsupportedFormat

STRICT = FetchLimits(read_timeout=0.5, total_timeout=3.0, max_bytes=256 * 1024)


def fetch(url: str, limits: FetchLimits = STRICT, resolver: Any = None) -> FetchResult:
    """Run one fetch on a fresh event loop."""
    return asyncio.run(Fetcher(limits, resolver=resolver).fetch(url))


def code_of(url: str, limits: FetchLimits = STRICT, resolver: Any = None) -> str:
    """The error code a fetch of ``url`` fails with."""
    with pytest.raises(Exception) as info:
        fetch(url, limits, resolver)
    return str(getattr(info.value, "code", type(info.value).__name__))


def static_resolver(table: dict[str, Sequence[str]]) -> Any:
    """A resolver answering from ``table`` and counting lookups per name."""
    calls: dict[str, int] = {}

    async def resolve(host: str, port: int) -> list[str]:
        calls[host] = calls.get(host, 0) + 1
        if host not in table:
            raise DnsFailed(f"{host} unknown")
        return list(table[host])

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


# The SSRF matrix, with the private-network switch off (the default).
SSRF_URLS = [
    "http://127.0.0.1:{port}/img/1.jpg",
    "http://localhost:{port}/img/1.jpg",
    "http://10.0.0.1/img/1.jpg",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]:{port}/img/1.jpg",
    "http://[::ffff:127.0.0.1]:{port}/img/1.jpg",
    "http://2130706433:{port}/img/1.jpg",
    "http://0x7f000001:{port}/img/1.jpg",
    "http://017700000001:{port}/img/1.jpg",
    "http://127.1:{port}/img/1.jpg",
    "http://0.0.0.0:{port}/img/1.jpg",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://192.168.1.1/",
    "http://172.16.0.1/",
    "http://100.64.0.1/",
    "http://224.0.0.1/",
    "http://[2002:7f00:1::]/",
    "http://[64:ff9b::a00:1]/",
]


@pytest.mark.parametrize("template", SSRF_URLS)
def test_ssrf_matrix_refused_without_connecting(template: str, image_server: ImageServer) -> None:
    before = dict(image_server.hits)
    url = template.format(port=image_server.port)
    assert code_of(url) == "address_forbidden"
    assert image_server.hits == before  # refused before any connection


def test_the_same_server_is_reachable_when_private_networks_are_allowed(
    image_server: ImageServer,
) -> None:
    limits = FetchLimits(allow_private=True, read_timeout=1.0)
    for host in ("127.0.0.1", "2130706433", "0x7f000001", "017700000001", "localhost"):
        result = fetch(image_server.url("/img/1.jpg", host), limits)
        assert result.data == jpeg(1)


def test_redirect_to_private_address_is_refused(image_server: ImageServer) -> None:
    # Only the image server itself is allowed: the first hop works, the redirect must not.
    limits = FetchLimits(allowed_networks=("127.0.0.1/32",), read_timeout=1.0)
    assert fetch(image_server.url("/img/2.jpg"), limits).data == jpeg(2)
    for target in ("http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/", "http://[::1]/"):
        url = image_server.url(f"/redirect?to={target}")
        assert code_of(url, limits) == "address_forbidden"


def test_name_resolving_to_private_address_is_refused(image_server: ImageServer) -> None:
    resolver = static_resolver({"evil.example": ["10.0.0.5"], "mixed.example": ["8.8.8.8", "::1"]})
    assert code_of("http://evil.example/x.jpg", resolver=resolver) == "address_forbidden"
    assert code_of("http://mixed.example/x.jpg", resolver=resolver) == "address_forbidden"
    # The real system resolver: localhost is a name for a loopback address.
    assert code_of(image_server.url("/img/1.jpg", "localhost")) == "address_forbidden"


def test_connects_to_the_vetted_address_with_the_name_as_host_header(
    image_server: ImageServer,
) -> None:
    resolver = static_resolver({"cdn.example": ["127.0.0.1"]})
    limits = FetchLimits(allowed_networks=("127.0.0.1/32",), read_timeout=1.0)
    result = fetch(f"http://cdn.example:{image_server.port}/img/3.jpg", limits, resolver)
    assert result.data == jpeg(3)
    assert result.address == "127.0.0.1"
    assert image_server.hosts["/img/3.jpg"] == f"cdn.example:{image_server.port}"
    assert resolver.calls == {"cdn.example": 1}  # resolved once: no second lookup to rebind


def test_every_redirect_hop_is_resolved_and_vetted(image_server: ImageServer) -> None:
    resolver = static_resolver({"a.example": ["127.0.0.1"], "b.example": ["127.0.0.1"]})
    limits = FetchLimits(allowed_networks=("127.0.0.1/32",), read_timeout=1.0)
    target = f"http://b.example:{image_server.port}/img/4.jpg"
    result = fetch(f"http://a.example:{image_server.port}/redirect?to={target}", limits, resolver)
    assert result.data == jpeg(4) and result.redirects == 1
    assert resolver.calls == {"a.example": 1, "b.example": 1}


def test_redirect_limit(image_server: ImageServer) -> None:
    limits = FetchLimits(allow_private=True, max_redirects=3, read_timeout=1.0)
    assert fetch(image_server.url("/hops/3"), limits).redirects == 3
    assert code_of(image_server.url("/hops/4"), limits) == "too_many_redirects"


def test_byte_cap_by_header_and_while_streaming(image_server: ImageServer) -> None:
    limits = FetchLimits(allow_private=True, max_bytes=256 * 1024, read_timeout=1.0)
    assert code_of(image_server.url("/declared-huge"), limits) == "too_large"
    assert code_of(image_server.url("/stream-huge"), limits) == "too_large"


def test_slow_server_times_out(image_server: ImageServer) -> None:
    limits = FetchLimits(allow_private=True, read_timeout=0.3, total_timeout=2.0)
    assert code_of(image_server.url("/slow"), limits) == "fetch_timeout"
    total = FetchLimits(allow_private=True, read_timeout=5.0, total_timeout=0.3)
    assert code_of(image_server.url("/slow"), total) == "fetch_timeout"


def test_format_is_judged_by_magic_bytes(image_server: ImageServer) -> None:
    limits = FetchLimits(allow_private=True, read_timeout=1.0)
    with pytest.raises(UnsupportedFormat):  # served as image/jpeg, but it is HTML
        fetch(image_server.url("/html"), limits)
    with pytest.raises(EmptyInput):
        fetch(image_server.url("/empty"), limits)


def test_http_errors_and_bad_urls(image_server: ImageServer) -> None:
    limits = FetchLimits(allow_private=True, read_timeout=1.0)
    assert code_of(image_server.url("/status/404"), limits) == "http_status"
    assert code_of(image_server.url("/status/500"), limits) == "http_status"
    assert code_of("ftp://example.com/a.jpg") == "url_scheme"
    assert code_of("file:///etc/passwd") == "url_scheme"
    assert code_of("gopher://127.0.0.1:70/") == "url_scheme"
    assert code_of("http://user:pw@example.com/a.jpg") == "url_invalid"
    assert code_of("http:///nohost") == "url_invalid"
    assert code_of("http://exa mple.com/") == "url_invalid"
    assert code_of("http://example.com:99999/") == "url_invalid"
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()  # nothing listens there now
    assert code_of(f"http://127.0.0.1:{port}/x.jpg", limits) == "connect_failed"


def test_unresolvable_name() -> None:
    assert code_of("http://no-such-host.invalid/x.jpg") == "dns_failed"


def test_concurrent_fetches_share_a_limit(image_server: ImageServer) -> None:
    limits = FetchLimits(allow_private=True, concurrency=2, read_timeout=2.0)

    async def many() -> list[bytes]:
        fetcher = Fetcher(limits)
        urls = [image_server.url(f"/delay/100/{i}.jpg") for i in range(6)]
        return [r.data for r in await asyncio.gather(*(fetcher.fetch(u) for u in urls))]

    assert asyncio.run(many()) == [jpeg(i) for i in range(6)]


INET_ATON_CASES = [
    "127.0.0.1",
    "2130706433",
    "0x7f000001",
    "017700000001",
    "127.1",
    "10.1",
    "0177.0.0.1",
    "0x7f.1",
    "1.2.3",
    "255.255.255.255",
    "0",
    "08",
    "1.2.3.256",
    "256.1",
    "1.2.3.4.5",
    "0x100000000",
    "4294967296",
    "4294967295",
    "01.02.03.04",
    "0x.1",
    "1..2",
    "cafe.be",
    "1e3",
]


@pytest.mark.parametrize("text", INET_ATON_CASES)
def test_ipv4_parser_agrees_with_inet_aton(text: str) -> None:
    """Reference implementation: the C library's ``inet_aton`` (what resolvers use)."""
    try:
        expected: ipaddress.IPv4Address | None = ipaddress.IPv4Address(socket.inet_aton(text))
    except OSError:
        expected = None
    assert parse_ipv4_loose(text) == expected


def test_url_normalisation() -> None:
    target = parse_url("HTTP://Example.COM./a b/ü.jpg?x=1 2#frag")
    assert (target.scheme, target.host, target.port) == ("http", "example.com", 80)
    assert target.path == "/a%20b/%C3%BC.jpg?x=1%202"
    assert parse_url("https://bücher.example/x").host == "xn--bcher-kva.example"
    assert parse_url("http://[2001:db8::1]:8080/").host_header == "[2001:db8::1]:8080"
