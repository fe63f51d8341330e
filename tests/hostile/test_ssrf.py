"""The SSRF matrix through the running service (issue 16): every spelling of a private address
is an item error with a typed code, the other items still score, and nothing is contacted.

The fetcher-level matrix lives in tests/serve/test_fetch.py (``SSRF_URLS``, reused here); this
module adds spellings it does not have and checks the whole path, from JSON to the answer."""

from __future__ import annotations

from typing import Any

import pytest
from hostile.hostkit import item
from serve.servekit import ImageServer, jpeg
from serve.test_fetch import SSRF_URLS

MORE_SPELLINGS = [
    "http://0:{port}/img/1.jpg",
    "http://0177.0.0.1:{port}/img/1.jpg",
    "http://127.000.000.001:{port}/img/1.jpg",
    "http://0x7f.1:{port}/img/1.jpg",
    "http://[::]:{port}/img/1.jpg",
    "http://[::127.0.0.1]:{port}/img/1.jpg",
    "http://[0:0:0:0:0:ffff:7f00:1]:{port}/img/1.jpg",
    "http://[::ffff:a9fe:a9fe]/latest/meta-data/",
    "http://\u2460\u2461\u2466.0.0.1:{port}/img/1.jpg",  # circled digits normalise to 127
    "http://localhost.:{port}/img/1.jpg",
    "http://LOCALHOST:{port}/img/1.jpg",
    "http://169.254.169.254./latest/meta-data/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://127.0.0.1:{port}#@example.com/img/1.jpg",
    "http://user@127.0.0.1:{port}/img/1.jpg",
    "gopher://127.0.0.1:{port}/_GET",
    "file:///etc/passwd",
]
CODES = {"address_forbidden", "url_invalid", "url_scheme", "dns_failed"}


@pytest.mark.parametrize("batch", [SSRF_URLS, MORE_SPELLINGS], ids=["test_fetch", "more"])
def test_private_addresses_are_item_errors_through_the_service(
    make_service: Any, image_server: ImageServer, batch: list[str]
) -> None:
    live = make_service(allow_private_networks=False)
    before = sum(image_server.hits.values())
    urls = [t.format(port=image_server.port) for t in batch]
    items: list[dict[str, Any]] = [{"url": u} for u in urls] + [item(jpeg(9))]
    with live.client() as client:
        r = client.post("/v1/score", json={"items": items})
    assert r.status_code == 200
    answers = r.json()["items"]
    assert answers[-1]["status"] == "ok"
    codes = {u: a["error"]["code"] for u, a in zip(urls, answers, strict=False)}
    assert set(codes.values()) <= CODES, codes
    assert sum(image_server.hits.values()) == before  # nothing reached the local server
