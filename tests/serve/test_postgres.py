"""The service on PostgreSQL: migrations, keys, review enqueue and the bank on a real server."""

from __future__ import annotations

import base64
from typing import Any

from serve.servekit import jpeg


def test_service_on_postgres(pg_url: str, make_service: Any) -> None:
    # pg_url first: its teardown (DROP DATABASE) runs after the service has stopped.
    service = make_service(db=pg_url)
    data = jpeg(61)
    item = {"image_base64": base64.b64encode(data).decode(), "seller_id": "S61"}
    with service.client() as client:
        assert client.get("/readyz").json()["checks"] == {
            "model": True, "bank": True, "database": True,
        }  # fmt: skip
        key = client.post("/v1/admin/keys", json={"name": "pg", "scopes": ["score"]}).json()["key"]
        review = client.post(
            "/v1/score", json={"items": [item], "thresholds": {"block": 1.0, "review": 0.0}}
        ).json()["items"][0]
        assert review["decision"] == "review" and review["review_item_id"] is not None
        files = {"file": ("a.jpg", data, "image/jpeg")}
        assert (
            client.post("/v1/bank/entries/upload", files=files, data={"bank": "k"}).status_code
            == 201
        )
    with service.client(key=key) as scorer:
        blocked = scorer.post("/v1/score", json={"items": [item]}).json()["items"][0]
    assert blocked["decision"] == "block" and blocked["matches"][0]["kind"] == "sha256"
    assert str(service.app.state.engine.url).startswith("postgresql+psycopg://")
