"""Request bodies that attack the parser (issue 16 points 2, 4 and 5)."""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlsplit

import pytest
from hostile.hostkit import item
from serve.servekit import ADMIN_KEY, LiveService, jpeg

from karung.serve.limits import JsonScan


def _raw_headers_only(service: LiveService, headers: dict[str, str]) -> bytes:
    """Send a POST's headers (claiming a 100 MB body), never the body; return the answer."""
    url = urlsplit(service.base_url)
    lines = ["POST /v1/score HTTP/1.1", f"Host: {url.netloc}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        sock.sendall(b'{"items": [{}, {}')  # the start of a body that never ends
        return sock.recv(65536)


@pytest.mark.parametrize("key", [None, "not-a-key"])
def test_unauthenticated_body_is_refused_unread(live_service: LiveService, key: str | None) -> None:
    headers = {"Content-Type": "application/json", "Content-Length": str(100 * 2**20 - 1)}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    answer = _raw_headers_only(live_service, headers)
    assert answer.startswith(b"HTTP/1.1 401")
    assert b'"unauthorized"' in answer


def test_authenticated_oversized_declared_body_is_refused_unread(
    live_service: LiveService,
) -> None:
    headers = {
        "Content-Type": "application/json",
        "Content-Length": str(101 * 2**20),
        "Authorization": f"Bearer {ADMIN_KEY}",
    }
    answer = _raw_headers_only(live_service, headers)
    assert answer.startswith(b"HTTP/1.1 413") and b'"too_large"' in answer


def test_a_body_of_a_million_empty_items_is_refused_before_parsing(service: LiveService) -> None:
    body = b'{"items":[' + b"{}," * 1_000_000 + b"{}]}"
    with service.client() as client:
        r = client.post("/v1/score", content=body, headers={"Content-Type": "application/json"})
        health = client.get("/healthz")
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
    assert health.status_code == 200


@pytest.mark.parametrize("depth", [50, 100_000])
def test_deeply_nested_json_is_a_validation_error(service: LiveService, depth: int) -> None:
    body = '{"items": ' + "[" * depth + "]" * depth + "}"
    with service.client() as client:
        r = client.post("/v1/score", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"


@pytest.mark.parametrize(
    ("content", "ctype"),
    [
        (b'{"items": [', "application/json"),  # truncated
        (b"\xff\xfe{}", "application/json"),  # not UTF-8
        (b'{"items": [{"url": "x"}], "items": 5}', "application/json"),  # duplicate key
        (b"--x\r\nContent-Disposition: form-data; name=files\r\n", "multipart/form-data"),
        (b"", "application/json"),
    ],
)
def test_every_parser_failure_has_a_stable_code(
    service: LiveService, content: bytes, ctype: str
) -> None:
    path = "/v1/score/upload" if ctype.startswith("multipart") else "/v1/score"
    if ctype.startswith("multipart"):
        ctype += "; boundary=x"
    with service.client() as client:
        r = client.post(path, content=content, headers={"Content-Type": ctype})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "validation_error"


@pytest.mark.parametrize("junk", ["x", None, 5, 1.5, True, [], [{"url": "u"}]])
def test_any_item_shape_is_an_item_error_not_a_failed_batch(
    service: LiveService, junk: Any
) -> None:
    with service.client() as client:
        r = client.post("/v1/score", json={"items": [item(jpeg(3)), junk, item(jpeg(4))]})
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["status"] for i in items] == ["ok", "error", "ok"]
    assert items[1]["error"]["code"] == "item_invalid"
    assert "JSON object" in items[1]["error"]["message"]


def test_items_are_capped_in_the_schema(service: LiveService) -> None:
    with service.client() as client:
        schema = client.get("/openapi.json").json()["components"]["schemas"]["ScoreRequest"]
        over = client.post("/v1/score", json={"items": [{"url": "u"}] * 65})
    assert schema["properties"]["items"]["maxItems"] >= 64
    assert over.status_code == 413 and over.json()["error"]["code"] == "too_large"


def test_json_scan_refuses_on_the_first_chunk_that_shows_it() -> None:
    scan = JsonScan(max_containers=10)
    assert scan.feed(b'{"items": [{"url": "a"},') is None
    refusal = scan.feed(b"{}," * 20)
    assert refusal is not None and refusal.status == 413 and refusal.code == "too_large"
    deep = JsonScan(max_containers=10_000)
    assert deep.feed(b'{"items": ' + b"[" * 20) == (
        422,
        "validation_error",
        "the JSON body nests deeper than 16 levels",
    )
