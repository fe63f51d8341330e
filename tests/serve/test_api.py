"""The service over real HTTP: uvicorn on loopback, a real image server, a real database."""

from __future__ import annotations

import base64
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from imagegen import encode, textured
from serve.servekit import ADMIN_KEY, ImageServer, LiveService, jpeg
from sqlalchemy import select

from karung.serve.review.models import ReviewItem
from karung.vision.labels import LABELS

BLOCK_ALL = {"block": 0.0, "review": 0.0}
REVIEW_ALL = {"block": 1.0, "review": 0.0}
ALLOW_ALL = {"block": 1.0, "review": 1.0}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def score(client: httpx.Client, items: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    response = client.post("/v1/score", json={"items": items, **extra})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def service(live_service: LiveService) -> LiveService:
    """This module checks the service over a real socket; the other modules run it in process."""
    return live_service


def new_key(service: LiveService, name: str, scopes: list[str], **extra: Any) -> str:
    with service.client() as admin:
        response = admin.post("/v1/admin/keys", json={"name": name, "scopes": scopes, **extra})
    assert response.status_code == 201, response.text
    key: str = response.json()["key"]
    return key


def review_rows(service: LiveService) -> list[ReviewItem]:
    with service.app.state.sessions() as session:
        return list(session.scalars(select(ReviewItem).order_by(ReviewItem.id)))


def test_health_and_docs(service: LiveService) -> None:
    with service.client(key=None) as anon:
        assert anon.get("/healthz").json() == {"status": "ok"}
        ready = anon.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"model": True, "bank": True, "database": True}
        assert anon.get("/docs").status_code == 200
        spec = anon.get("/openapi.json").json()
        assert {"/v1/score", "/v1/score/upload", "/v1/admin/model"} <= set(spec["paths"])


def test_auth_and_scopes(service: LiveService) -> None:
    item = [{"image_base64": b64(jpeg(1))}]
    with service.client(key=None) as anon:
        response = anon.post("/v1/score", json={"items": item})
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"
    with service.client(key="krg_not_a_real_key_000000000000") as bad:
        assert bad.post("/v1/score", json={"items": item}).status_code == 401
    reader = new_key(service, "reader", ["bank:read"])
    with service.client(key=reader) as client:
        response = client.post("/v1/score", json={"items": item})
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "forbidden"
        assert client.get("/v1/admin/keys").status_code == 403
    scorer = new_key(service, "scorer", ["score"])
    with service.client(key=None, **{"X-API-Key": scorer}) as client:
        assert client.post("/v1/score", json={"items": item}).status_code == 200
        with service.client() as admin:
            assert admin.delete("/v1/admin/keys/scorer").status_code == 200
            listed = {k["name"]: k for k in admin.get("/v1/admin/keys").json()}
            assert listed["scorer"]["revoked_at"] is not None
            assert all("key" not in k for k in listed.values())
        assert client.post("/v1/score", json={"items": item}).status_code == 401


def test_batch_keeps_order_and_isolates_bad_items(
    service: LiveService, image_server: ImageServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="karung.serve.scoring")
    items = [
        {"url": image_server.url("/img/1.jpg"), "listing_id": "L1", "seller_id": "S1"},
        {"url": image_server.url("/corrupt.jpg")},
        {"url": image_server.url("/html")},
        {"url": image_server.url("/status/404")},
        {"image_base64": b64(jpeg(2)), "listing_id": "L2"},
        {"url": image_server.url("/stream-huge")},
        {"url": image_server.url("/slow")},
        {"url": "ftp://example.com/a.jpg"},
        {"image_base64": "not base64!"},
        {"listing_id": "nothing to score"},
        {"url": 42},
        {"url": image_server.url("/img/3.jpg"), "category": "fashion"},
    ]
    with service.client() as client:
        body = score(client, items)
    got = [(r["index"], r["status"], (r["error"] or {}).get("code")) for r in body["items"]]
    assert got == [
        (0, "ok", None),
        (1, "error", "corrupt_image"),
        (2, "error", "unsupported_format"),
        (3, "error", "http_status"),
        (4, "ok", None),
        (5, "error", "too_large"),
        (6, "error", "fetch_timeout"),
        (7, "error", "url_scheme"),
        (8, "error", "invalid_base64"),
        (9, "error", "item_invalid"),
        (10, "error", "item_invalid"),
        (11, "ok", None),
    ]
    first = body["items"][0]
    assert first["listing_id"] == "L1" and first["seller_id"] == "S1"
    assert set(first["scores"]) == set(LABELS)
    assert abs(sum(first["scores"].values()) - 1) < 1e-4
    assert first["risk"] == pytest.approx(
        first["scores"]["bale"] + first["scores"]["sack"], abs=1e-5
    )
    assert first["label"] == max(first["scores"], key=first["scores"].get)
    assert first["model_version"] == body["model_version"]
    assert {"fetch_ms", "decode_ms", "infer_ms", "total_ms"} <= set(first["timings_ms"])
    assert body["items"][11]["category"] == "fashion"
    logged = {getattr(r, "code", None) for r in caplog.records if r.name == "karung.serve.scoring"}
    assert {"corrupt_image", "too_large", "fetch_timeout"} <= logged  # errors are logged


@pytest.mark.parametrize(
    ("thresholds", "decision", "reason"),
    [
        (BLOCK_ALL, "block", "risk>=block_threshold"),
        (REVIEW_ALL, "review", "risk>=review_threshold"),
        (ALLOW_ALL, "allow", "risk<review_threshold"),
    ],
)
def test_decisions_and_reasons(
    service: LiveService, thresholds: dict[str, float], decision: str, reason: str
) -> None:
    with service.client() as client:
        body = score(client, [{"image_base64": b64(jpeg(11))}], thresholds=thresholds)
    item = body["items"][0]
    assert (item["decision"], item["reasons"]) == (decision, [reason])
    assert body["thresholds"] == thresholds
    assert (item["review_item_id"] is not None) == (decision == "review")


def test_review_band_is_enqueued_once_per_image(service: LiveService) -> None:
    data = jpeg(21)
    items = [{"image_base64": b64(data), "listing_id": "L21", "seller_id": "S21"}]
    with service.client() as client:
        first = score(client, items, thresholds=REVIEW_ALL)["items"][0]
        again = score(client, items, thresholds=REVIEW_ALL)["items"][0]
    assert first["review_item_id"] == again["review_item_id"] is not None
    row = next(r for r in review_rows(service) if r.id == first["review_item_id"])
    assert (row.reason, row.status, row.listing_id, row.seller_id) == (
        "review_band",
        "pending",
        "L21",
        "S21",
    )
    assert row.sha256 == first["sha256"] and row.model_decision == "review"
    assert row.thumbnail[:3] == b"\xff\xd8\xff"


def test_thresholds_per_client_and_per_request(service: LiveService) -> None:
    strict = new_key(
        service, "strict-platform", ["score"], block_threshold=0.0, review_threshold=0.0
    )
    item = [{"image_base64": b64(jpeg(5))}]
    with service.client(key=strict) as client:
        assert score(client, item)["items"][0]["decision"] == "block"
        assert score(client, item, thresholds=ALLOW_ALL)["items"][0]["decision"] == "allow"
        response = client.post(
            "/v1/score", json={"items": item, "thresholds": {"block": 0.2, "review": 0.5}}
        )
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "invalid_thresholds"


def test_request_limits(service: LiveService) -> None:
    with service.client() as client:
        too_many = client.post(
            "/v1/score", json={"items": [{"url": "http://x.example/a.jpg"}] * 65}
        )
        assert too_many.status_code == 413
        assert too_many.json()["error"]["code"] == "too_large"
        empty = client.post("/v1/score", json={"items": []})
        assert empty.status_code == 422
        assert empty.json()["error"]["code"] == "validation_error"


def test_multipart_upload(service: LiveService) -> None:
    files = [
        ("files", ("a.jpg", jpeg(31), "image/jpeg")),
        ("files", ("b.txt", b"hello, not an image", "text/plain")),
        ("files", ("c.png", jpeg(32), "image/png")),  # the name lies, the bytes are JPEG
    ]
    with service.client() as client:
        response = client.post(
            "/v1/score/upload",
            files=files,
            data={"listing_id": "L9", "block_threshold": "0", "review_threshold": "0"},
        )
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [i["status"] for i in items] == ["ok", "error", "ok"]
    assert items[1]["error"]["code"] == "unsupported_format"
    assert items[0]["decision"] == "block" and items[2]["listing_id"] == "L9"


def test_metrics_exposure(service: LiveService, image_server: ImageServer) -> None:
    with service.client() as client:
        score(
            client, [{"url": "http://10.0.0.1/x.jpg"}], thresholds=BLOCK_ALL
        )  # allowed: private on
        score(
            client, [{"url": "gopher://x/"}, {"image_base64": b64(jpeg(3))}], thresholds=BLOCK_ALL
        )
    with service.client(key=None) as anon:
        text = anon.get("/metrics").text
    for needle in (
        'karung_http_requests_total{method="POST",route="/v1/score",status="200"}',
        'karung_http_request_duration_seconds_bucket{le="0.005",route="/v1/score"}',
        'karung_decisions_total{decision="block"}',
        'karung_fetch_errors_total{code="url_scheme"}',
        'karung_item_errors_total{code="url_scheme"}',
        "karung_score_request_items_bucket",
        "karung_inference_batch_size_bucket",
        "karung_bank_index_size",
        "karung_model_loaded 1.0",
        "karung_model_fallback_share 0.0",  # a torch model re-checks nothing
    ):
        assert needle in text, needle


def test_request_ids_and_json_logs(service: LiveService, caplog: pytest.LogCaptureFixture) -> None:
    from karung.serve.logs import JsonFormatter

    caplog.set_level(logging.INFO, logger="karung.access")
    with service.client() as client:
        response = client.get("/v1/admin/model", headers={"X-Request-ID": "trace-42"})
        generated = client.get("/v1/admin/model", headers={"X-Request-ID": "bad id with spaces"})
    assert response.headers["x-request-id"] == "trace-42"
    assert generated.headers["x-request-id"] != "bad id with spaces"
    mine = [r for r in caplog.records if getattr(r, "request_id", None) == "trace-42"]
    assert len(mine) == 1
    line = JsonFormatter().format(mine[0])
    assert '"request_id": "trace-42"' in line and '"client": "admin"' in line
    assert ADMIN_KEY not in line


def test_model_swap_under_load(
    make_service: Any, image_server: ImageServer, model_dirs: tuple[Path, Path]
) -> None:
    service = make_service()
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def slow_request(seed: int) -> None:
        items = [{"url": image_server.url(f"/delay/700/{seed}{i}.jpg")} for i in range(3)]
        try:
            with service.client() as client:
                results.append(score(client, items))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    with service.client() as admin:
        old = admin.get("/v1/admin/model").json()["model"]["model_version"]
        in_flight = [threading.Thread(target=slow_request, args=(s,)) for s in range(4)]
        for thread in in_flight:
            thread.start()
        time.sleep(0.3)  # the requests have captured the old model and are fetching
        swap = admin.post("/v1/admin/model", json={"path": str(model_dirs[1])})
        assert swap.status_code == 200, swap.text
        new = swap.json()["model"]["model_version"]
        assert swap.json()["previous_version"] == old and new != old
        for thread in in_flight:
            thread.join()
        after = score(admin, [{"image_base64": b64(jpeg(1))}])
    assert not errors
    assert len(results) == 4
    for body in results:  # in-flight requests finished on the old model, consistently
        assert body["model_version"] == old
        assert {i["model_version"] for i in body["items"]} == {old}
        assert all(i["status"] == "ok" for i in body["items"])
    assert after["model_version"] == new


def test_swap_rejects_a_broken_checkpoint(service: LiveService, tmp_path: Path) -> None:
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a checkpoint")
    with service.client() as admin:
        before = admin.get("/v1/admin/model").json()["model"]["model_version"]
        response = admin.post("/v1/admin/model", json={"path": str(bad)})
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "checkpoint_error"
        assert admin.get("/v1/admin/model").json()["model"]["model_version"] == before


def test_without_a_model_scoring_is_unavailable(
    make_service: Any, tmp_path: Path, model_dirs: tuple[Path, Path]
) -> None:
    service = make_service(model=tmp_path / "no-model-here")
    with service.client() as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["model"] is False
        response = client.post("/v1/score", json={"items": [{"image_base64": b64(jpeg(1))}]})
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "model_unavailable"
        files = {"file": ("a.jpg", jpeg(8), "image/jpeg")}
        added = client.post("/v1/bank/entries/upload", files=files, data={"bank": "known"})
        assert added.status_code == 201  # the bank API works without a model
        assert client.get("/v1/sellers/anyone/links").status_code == 200
        assert client.post("/v1/admin/model", json={"path": str(model_dirs[0])}).status_code == 200
        assert client.get("/readyz").status_code == 200
        assert score(client, [{"image_base64": b64(jpeg(1))}])["items"][0]["status"] == "ok"


def test_ssrf_matrix_through_the_api(make_service: Any, image_server: ImageServer) -> None:
    service = make_service(allow_private_networks=False)
    port = image_server.port
    hostile = [
        f"http://127.0.0.1:{port}/img/1.jpg",
        f"http://localhost:{port}/img/1.jpg",
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        f"http://[::1]:{port}/img/1.jpg",
        f"http://[::ffff:127.0.0.1]:{port}/img/1.jpg",
        f"http://2130706433:{port}/img/1.jpg",
        f"http://0x7f000001:{port}/img/1.jpg",
        f"http://017700000001:{port}/img/1.jpg",
    ]
    before = dict(image_server.hits)
    items = [{"url": u} for u in hostile] + [{"image_base64": b64(jpeg(1))}]
    with service.client() as client:
        body = score(client, items)
    codes = [(i["error"] or {}).get("code") for i in body["items"]]
    assert codes == ["address_forbidden"] * len(hostile) + [None]
    with service.client() as client:  # the bank's add-by-URL uses the same fetcher
        added = client.post("/v1/bank/entries", json={"url": "http://169.254.169.254/a.jpg"})
        assert added.status_code == 422 and added.json()["error"]["code"] == "address_forbidden"
    assert image_server.hits == before


def test_qc_samples_of_allow_and_block(make_service: Any) -> None:
    service = make_service(review_sample_allow=1.0, review_sample_block=1.0)
    with service.client() as client:
        allowed = score(client, [{"image_base64": b64(jpeg(41))}], thresholds=ALLOW_ALL)
        blocked = score(client, [{"image_base64": b64(jpeg(42))}], thresholds=BLOCK_ALL)
    rows = {r.id: r for r in review_rows(service)}
    assert rows[allowed["items"][0]["review_item_id"]].reason == "qc_allow"
    assert rows[blocked["items"][0]["review_item_id"]].reason == "qc_block"


def test_request_body_cap(make_service: Any) -> None:
    service = make_service(max_request_bytes=4096)
    big = {"items": [{"image_base64": b64(jpeg(1, 200, 150))}]}
    small = {"items": [{"image_base64": b64(jpeg(1, 16, 16))}]}

    def chunks() -> Any:
        for _ in range(10):
            yield b" " * 1000  # streamed without Content-Length

    with service.client() as client:
        declared = client.post("/v1/score", json=big)
        assert declared.status_code == 413 and declared.json()["error"]["code"] == "too_large"
        assert declared.headers["x-request-id"]
        streamed = client.post(
            "/v1/score", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert streamed.status_code == 413
        assert client.post("/v1/score", json=small).status_code == 200


def test_every_intake_mode_answers_alike(make_service: Any, image_server: ImageServer) -> None:
    """Every intake mode serves the same scores, hashes and errors (threads for one process,
    the event loop for a process per core, worker processes for crash isolation)."""
    items = [
        {"url": image_server.url("/img/1.jpg")},
        {"image_base64": b64(jpeg(5, 300, 200))},
        {"url": image_server.url("/corrupt.jpg")},
        {"image_base64": b64(encode(textured(120, 90, 4), "PNG"))},  # a pool thread in loop mode
    ]
    answers = []
    for mode in ("thread", "process", "loop"):
        live = make_service(intake_mode=mode)
        assert live.app.state.scorer.intake.mode == mode
        assert live.app.state.scorer.batcher.inline is (mode == "loop")
        with live.client() as client:
            answers.append(score(client, items)["items"])
    assert [item["status"] for item in answers[0]] == ["ok", "ok", "error", "ok"]
    for threaded, isolated in [(answers[0], other) for other in answers[1:]]:
        _assert_same_answers(threaded, isolated)


def test_auto_intake_mode_follows_the_worker_count(make_service: Any) -> None:
    cores = os.cpu_count() or 1
    one = make_service(workers=1).app.state.scorer.intake.mode
    assert one == ("thread" if cores > 1 else "loop")
    per_core = make_service(workers=cores)
    assert per_core.app.state.scorer.intake.mode == "loop"


def _assert_same_answers(first: list[dict[str, Any]], second: list[dict[str, Any]]) -> None:
    for threaded, isolated in zip(first, second, strict=True):
        assert threaded["status"] == isolated["status"]
        assert threaded["error"] == isolated["error"]
        assert threaded["sha256"] == isolated["sha256"]
        if threaded["scores"] is not None:  # batches of other sizes move the last digits
            assert threaded["scores"] == pytest.approx(isolated["scores"], abs=1e-4)
        else:
            assert isolated["scores"] is None
