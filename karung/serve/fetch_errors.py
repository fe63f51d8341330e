"""Errors of the hardened fetcher, one class per failure, each with a stable ``code``.

The codes reach API clients (an item's ``error``), batch rows and logs unchanged, so they are
never renamed. Raised by :mod:`karung.serve.fetch_targets` (URL and address vetting) and
:mod:`karung.serve.fetch` (the HTTP client).
"""

from __future__ import annotations

from karung.errors import KarungError


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
