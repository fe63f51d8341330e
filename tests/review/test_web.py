"""The /review UI over real HTTP on the real service: login, CSRF, keyboard API, pages."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from review.reviewkit import ADMIN_KEY, PASSWORD, Live, tiny_image
from sqlalchemy import select

from karung.serve.review import outbox
from karung.serve.review.models import AuditEntry, ReviewDecision, ReviewItem

AddItems = Callable[..., list[int]]


def test_login_logout_and_redirects(live_factory: Callable[..., Live]) -> None:
    live = live_factory()
    with live.client() as anon:
        r = anon.get("/review/history")
        assert r.status_code == 303 and r.headers["location"].startswith("/review/login?next=")
        assert anon.get("/review/items/1/image").status_code == 401
        bad = anon.post("/review/login", data={"name": "ana", "password": "wrong password"})
        assert bad.status_code == 401 and "wrong name or password" in bad.text
        nobody = anon.post("/review/login", data={"name": "eve", "password": "whatever123"})
        assert nobody.status_code == 401
        # API keys of the platform are no moderator login
        api = anon.get("/review", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        assert api.status_code == 303
        evil = anon.post(
            "/review/login",
            data={"name": "ana", "password": "correct horse battery staple", "next": "//evil"},
        )
        assert evil.status_code == 303 and evil.headers["location"] == "/review"
        cookie = evil.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/review" in cookie
    client, csrf = live.login("ana")
    page = client.get("/review")
    assert page.status_code == 200 and "Nothing to review right now" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    client.post("/review/logout", data={"csrf": csrf})
    assert client.get("/review").status_code == 303
    client.close()


def test_keyboard_api_decide_skip_undo(
    live_factory: Callable[..., Live], add_items: AddItems
) -> None:
    live = live_factory(double_review_share=0.0)
    ids = add_items(live.sessions, 3, risk=0.8)
    client, csrf = live.login("ana")
    page = client.get("/review")
    for item_id in ids:
        assert f'data-item-id="{item_id}"' in page.text
    hdr = {"X-CSRF-Token": csrf}
    body = {"item_id": ids[0], "label": "bale", "reason_code": "visual"}
    assert client.post("/review/api/decide", json=body).status_code == 401  # no CSRF token
    r = client.post("/review/api/decide", json=body, headers=hdr)
    assert r.json() == {"item_id": ids[0], "status": "decided", "final_label": "bale"}
    again = client.post("/review/api/decide", json=body, headers=hdr)
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_claimed"
    bad = client.post(
        "/review/api/decide", json=body | {"item_id": ids[1], "label": "shoe"}, headers=hdr
    )
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_label"
    assert client.post("/review/api/skip", json={"item_id": ids[1]}, headers=hdr).status_code == 200
    undo = client.post("/review/api/undo", json={}, headers=hdr).json()
    assert undo["item_id"] == ids[1] and undo["status"] == "claimed"
    assert f'data-item-id="{ids[1]}"' in undo["card_html"]
    undo2 = client.post("/review/api/undo", json={}, headers=hdr).json()
    assert undo2["item_id"] == ids[0] and undo2["final_label"] is None
    claim = client.post("/review/api/claim", json={}, headers=hdr).json()
    assert sorted(claim["items"]) == sorted(ids) and claim["waiting"] == 0
    image = client.get(f"/review/items/{ids[0]}/image")
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    # budi sees none of ana's held items
    other, csrf_b = live.login("budi")
    held = other.post("/review/api/claim", json={}, headers={"X-CSRF-Token": csrf_b}).json()
    assert held["items"] == []
    for path in (
        "/review/history",
        "/review/history?who=all",
        "/review/audit",
        f"/review/audit?item={ids[0]}",
        "/review/agreement",
    ):
        assert other.get(path).status_code == 200, path
    history = client.get("/review/history").text
    assert "undone" in history and f"#{ids[0]}" in history
    with live.sessions() as s:
        actions = s.scalars(select(AuditEntry.action).where(AuditEntry.item_id.is_not(None))).all()
        assert sorted(actions) == ["decide", "skip", "undo", "undo"]
    client.close()
    other.close()


def _b64_jpeg(seed: int) -> str:
    buf = io.BytesIO()
    tiny_image(seed, 80).save(buf, format="JPEG", quality=90)
    return base64.b64encode(buf.getvalue()).decode()


def test_scorer_feeds_the_queue_and_decisions_go_out(live_factory: Callable[..., Live]) -> None:
    """The whole loop: /v1/score (review band) -> queue -> moderator -> final label."""
    live = live_factory(model=True, double_review_share=0.0)
    items: list[dict[str, Any]] = [
        {"image_base64": _b64_jpeg(s), "listing_id": f"L{s}", "seller_id": "seller-9"}
        for s in range(3)
    ]
    with live.client(headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as api:
        r = api.post(
            "/v1/score", json={"items": items, "thresholds": {"block": 1.0, "review": 0.0}}
        )
    assert r.status_code == 200, r.text
    queued = [res["review_item_id"] for res in r.json()["items"]]
    assert all(isinstance(i, int) for i in queued), r.json()
    client, csrf = live.login("citra")
    page = client.get("/review").text
    assert all(f'data-item-id="{i}"' in page for i in queued)
    assert "×3" in page  # the seller's cluster
    for item_id in queued:
        body = {"item_id": item_id, "label": "garment", "reason_code": "visual"}
        assert client.post(
            "/review/api/decide", json=body, headers={"X-CSRF-Token": csrf}
        ).is_success
    with live.sessions() as s:
        rows = s.execute(select(ReviewItem.listing_id, ReviewItem.final_label)).all()
        assert sorted(rows) == [("L0", "garment"), ("L1", "garment"), ("L2", "garment")]
        assert len(s.scalars(select(ReviewDecision)).all()) == 3
    client.close()


def test_password_guessing_is_throttled(live_factory: Callable[..., Live]) -> None:
    live = live_factory()
    with live.client() as anon:
        for _ in range(10):
            r = anon.post("/review/login", data={"name": "budi", "password": "guess-guess"})
            assert r.status_code == 401
        right = anon.post("/review/login", data={"name": "budi", "password": PASSWORD})
        assert right.status_code == 429  # even the right password waits out the window
    client, _ = live.login("ana")  # other accounts are not affected
    client.close()


def test_decisions_reach_the_platform_webhook(
    live_factory: Callable[..., Live], add_items: AddItems
) -> None:
    """The outbox worker runs inside the service (setup.running) and signs what it sends."""
    got: list[tuple[dict[str, str], bytes]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        live = live_factory(
            double_review_share=0.0,
            webhook_url=f"http://127.0.0.1:{server.server_address[1]}/karung",
            webhook_secret="platform-secret",
            outbox_poll_seconds=30,  # delivery must come from the nudge, not the poll
        )
        (item_id,) = add_items(live.sessions, 1)
        client, csrf = live.login("ana")
        client.get("/review")
        body = {"item_id": item_id, "label": "sack", "reason_code": "listing_text"}
        assert client.post(
            "/review/api/decide", json=body, headers={"X-CSRF-Token": csrf}
        ).is_success
        deadline = time.monotonic() + 20
        while not got and time.monotonic() < deadline:
            time.sleep(0.05)
        (headers, raw), *_ = got
        assert outbox.verify(
            "platform-secret",
            raw,
            timestamp=headers["x-karung-timestamp"],
            signature=headers["x-karung-signature"],
        )
        event = json.loads(raw)
        assert event["event"] == "review.decided"
        assert (event["data"]["item_id"], event["data"]["label"]) == (item_id, "sack")
        assert event["data"]["reason_code"] == "listing_text"
        client.close()
    finally:
        server.shutdown()
        server.server_close()


def test_confirmed_bale_blocks_the_next_upload_on_sight(live_factory: Callable[..., Live]) -> None:
    """Review -> bank -> scorer: the re-upload of a confirmed photo is blocked at once."""
    live = live_factory(model=True, double_review_share=0.0, bank="confirmed")
    if live.app.state.bank is None:
        pytest.skip("the service runs without a hash bank")
    photo = {"image_base64": _b64_jpeg(42), "listing_id": "L-first", "seller_id": "trader-1"}
    review_band = {"block": 1.0, "review": 0.0}  # the tiny model's scores all go to review
    with live.client(headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as api:
        first = api.post("/v1/score", json={"items": [photo], "thresholds": review_band}).json()
        (result,) = first["items"]
        assert result["decision"] == "review" and result["matches"] == []
        client, csrf = live.login("ana")
        client.get("/review")
        body = {"item_id": result["review_item_id"], "label": "bale", "reason_code": "visual"}
        r = client.post("/review/api/decide", json=body, headers={"X-CSRF-Token": csrf})
        assert r.json()["final_label"] == "bale"
        again = {**photo, "listing_id": "L-second", "seller_id": "trader-2"}
        second = api.post("/v1/score", json={"items": [again], "thresholds": review_band}).json()
    (result2,) = second["items"]
    assert result2["decision"] == "block", result2
    assert any(m["bank"] == "confirmed" for m in result2["matches"])
    page = client.get("/review/history").text
    assert "bale" in page
    client.close()
