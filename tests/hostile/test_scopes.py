"""The ``review`` API-key scope guards the review-outcome endpoint (issue 16)."""

from __future__ import annotations

from hostile.hostkit import item
from serve.servekit import LiveService, jpeg


def test_review_scope_reads_review_outcomes(service: LiveService) -> None:
    with service.client() as admin:
        keys = {
            scope: admin.post(
                "/v1/admin/keys", json={"name": f"s-{scope}", "scopes": [scope]}
            ).json()["key"]
            for scope in ("score", "review")
        }
        body = {"items": [item(jpeg(77))], "thresholds": {"block": 1.0, "review": 0.0}}
        queued = admin.post("/v1/score", json=body).json()["items"][0]
    item_id = queued["review_item_id"]
    assert item_id is not None
    with service.client(key=keys["score"]) as scorer:
        assert scorer.get(f"/v1/review/items/{item_id}").status_code == 403
    with service.client(key=keys["review"]) as platform:
        got = platform.get(f"/v1/review/items/{item_id}")
        missing = platform.get("/v1/review/items/999999")
        scoring = platform.post("/v1/score", json={"items": [item(jpeg(78))]})
    assert got.status_code == 200
    assert got.json()["status"] == "pending" and got.json()["final_label"] is None
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert scoring.status_code == 403  # review is not score
