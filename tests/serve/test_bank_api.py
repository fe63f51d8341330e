"""Bank endpoints, bank matches in scoring, seller links and index refresh, over real HTTP."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from imagegen import encode, textured
from PIL import Image
from serve.servekit import ImageServer, LiveService

from karung.serve.bank.service import BankService
from karung.serve.review.models import ReviewItem
from karung.serve.verdict import Match

ALLOW_ALL = {"block": 1.0, "review": 1.0}


def photo(seed: int) -> Image.Image:
    """A structured image, distinct per seed, large enough for a usable PDQ hash."""
    rng = np.random.default_rng(seed)
    field = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    base = Image.fromarray(field).resize((640, 480), Image.Resampling.BICUBIC)
    return Image.blend(base, textured(640, 480, seed), 0.2)


def jpeg_of(img: Image.Image, quality: int = 90) -> bytes:
    return encode(img, "JPEG", quality=quality)


def upload(client: Any, data: bytes, **form: str) -> Any:
    return client.post(
        "/v1/bank/entries/upload", files={"file": ("x.jpg", data, "image/jpeg")}, data=form
    )


def score_one(client: Any, data: bytes, **meta: str) -> dict[str, Any]:
    item = {"image_base64": base64.b64encode(data).decode(), **meta}
    response = client.post("/v1/score", json={"items": [item], "thresholds": ALLOW_ALL})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["items"][0]
    return result


def test_ready_with_bank(service: LiveService) -> None:
    with service.client(key=None) as anon:
        ready = anon.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"model": True, "bank": True, "database": True}


def test_add_match_lookup_remove(service: LiveService) -> None:
    original = jpeg_of(photo(100))
    with service.client() as client:
        first = upload(client, original, bank="known", listing_id="L-orig", seller_id="S-orig")
        assert first.status_code == 201, first.text
        entry = first.json()["entry"]
        assert first.json()["created"] is True and entry["seller_id"] == "S-orig"
        again = upload(client, original, bank="known")
        assert again.status_code == 200 and again.json()["created"] is False

        exact = score_one(client, original)
        assert exact["decision"] == "block"
        assert "bank_match:sha256:distance=0" in exact["reasons"]
        assert exact["reasons"][-1] == "risk<review_threshold"  # the model alone would allow
        assert exact["matches"][0]["listing_id"] == "L-orig"
        assert exact["matches"][0]["seller_id"] == "S-orig"

        smaller = photo(100).resize((500, 375), Image.Resampling.BILINEAR)
        near = score_one(client, jpeg_of(smaller, quality=70))
        assert near["decision"] == "block"
        assert any(r.startswith(("bank_match:pdq:", "bank_match:phash:")) for r in near["reasons"])

        unrelated = score_one(client, jpeg_of(photo(101)))
        assert (unrelated["decision"], unrelated["matches"]) == ("allow", [])

        found = client.get("/v1/bank/lookup", params={"kind": "pdq", "hash": entry["pdq"]})
        assert found.status_code == 200
        assert [m["entry_id"] for m in found.json()["matches"]] == [entry["id"]]
        bad = client.get("/v1/bank/lookup", params={"kind": "pdq", "hash": "xyz"})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "malformed_hash"

        assert client.delete(f"/v1/bank/entries/{entry['id']}").status_code == 200
        assert score_one(client, original)["matches"] == []
        gone = client.delete(f"/v1/bank/entries/{entry['id']}")
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "entry_not_found"


def test_add_by_url_and_bad_input(service: LiveService, image_server: ImageServer) -> None:
    with service.client() as client:
        by_url = client.post(
            "/v1/bank/entries",
            json={"url": image_server.url("/img/77.jpg"), "bank": "known", "seller_id": "S77"},
        )
        assert by_url.status_code == 201, by_url.text
        assert by_url.json()["entry"]["source_url"] == image_server.url("/img/77.jpg")
        assert by_url.json()["entry"]["added_by"] == "admin"
        html = client.post("/v1/bank/entries", json={"url": image_server.url("/html")})
        assert html.status_code == 422 and html.json()["error"]["code"] == "unsupported_format"
        neither = client.post("/v1/bank/entries", json={"bank": "known"})
        assert neither.status_code == 422 and neither.json()["error"]["code"] == "item_invalid"
        junk = upload(client, b"GIF89a" + b"\x00" * 10)
        assert junk.status_code == 422 and junk.json()["error"]["code"] == "corrupt_image"


def test_bank_scopes(service: LiveService) -> None:
    with service.client() as admin:
        made = admin.post("/v1/admin/keys", json={"name": "bank-reader", "scopes": ["bank:read"]})
    with service.client(key=made.json()["key"]) as reader:
        assert reader.get("/v1/sellers/nobody/links").status_code == 200
        denied = upload(reader, jpeg_of(photo(5)))
        assert denied.status_code == 403


def test_seller_links_from_bank_and_scoring(service: LiveService) -> None:
    with service.client() as client:
        assert upload(client, jpeg_of(photo(200)), bank="known", seller_id="S-a").status_code == 201
        # Another seller posts the same photo, re-encoded: the scorer records the match event.
        hit = score_one(client, jpeg_of(photo(200), quality=75), seller_id="S-b", listing_id="L-b")
        assert hit["decision"] == "block"
        links = client.get("/v1/sellers/S-b/links").json()
        assert links["linked_sellers"] == ["S-a"]
        assert links["links"][0]["source"] == "event"
        clusters = client.get("/v1/sellers").json()["clusters"]
        assert any({"S-a", "S-b"} <= set(c["sellers"]) for c in clusters)


def test_index_follows_changes_made_elsewhere(service: LiveService) -> None:
    """A second writer (the CLI, another replica) adds an entry; this replica polls it in."""
    data = jpeg_of(photo(300))
    with service.client() as client:
        assert score_one(client, data)["matches"] == []
        other = BankService(service.app.state.engine, load=False)
        other.add_image(data, bank="known", seller_id="S-cli")
        deadline = time.monotonic() + 20
        while not score_one(client, data)["matches"]:
            if time.monotonic() > deadline:
                pytest.fail("the service never picked up the entry added elsewhere")
            time.sleep(0.2)
        metrics = client.get("/metrics").text
    size = next(line for line in metrics.splitlines() if line.startswith("karung_bank_index_size"))
    assert float(size.split()[-1]) >= 1


def test_queue_records_the_models_decision_not_the_bank_block(
    make_service: Callable[..., LiveService],
) -> None:
    """A bank match blocks, but the model alone would allow: the answer, the review queue row
    (and so the moderators' view and the webhook built from it) must say the model allowed."""
    service = make_service(local=True, review_sample_block=1.0)  # every block goes to QC
    original = jpeg_of(photo(300))
    with service.client() as client:
        assert upload(client, original, bank="known", listing_id="L-b").status_code == 201
        result = score_one(client, original, listing_id="L-new")
    assert (result["decision"], result["model_decision"]) == ("block", "allow")
    assert result["review_item_id"] is not None
    with service.app.state.sessions() as session:
        row = session.get_one(ReviewItem, result["review_item_id"])
    assert (row.reason, row.model_decision) == ("qc_block", "allow")
    assert [m["listing_id"] for m in row.matches] == ["L-b"]
    assert Match.from_dict(row.matches[0]).kind == "sha256"
