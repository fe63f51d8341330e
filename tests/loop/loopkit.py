"""Support code of the retraining-loop tests: labelled tiny images, sellers, moderators' work.

Imported as ``loop.loopkit`` (``tests`` is on ``pythonpath``).
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import httpx
import numpy as np
from PIL import Image
from review.reviewkit import Live

from karung.serve.review.export import seller_split

LABELS = ("bale", "sack", "garment", "other")
HUES = {"bale": 30, "sack": 0, "garment": 350, "other": 220}  # degrees; sack is the pale one
PASSWORD = "correct horse battery staple"


def labelled_jpeg(label: str, seed: int, size: int = 64) -> bytes:
    """A small JPEG whose hue tells its label, with seed-dependent stripes and noise."""
    rng = np.random.default_rng(seed)
    saturation = 10 if label == "sack" else 160
    hsv = np.zeros((size, size, 3), dtype=np.float64)
    hsv[..., 0] = HUES[label] * 255 / 360
    hsv[..., 1] = saturation
    rows = np.arange(size)[:, None] + 2 * np.arange(size)[None, :]
    hsv[..., 2] = 180 + 30 * np.sin(rows * 2 * np.pi / (6 + seed % 5))
    hsv += rng.normal(0, 8, hsv.shape)
    image = Image.fromarray(np.clip(hsv, 0, 255).astype(np.uint8), "HSV").convert("RGB")
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def sellers(n_val: int, n_train: int) -> list[str]:
    """Seller ids whose review-export split is ``val`` for the first ``n_val``, else ``train``."""
    val: list[str] = []
    train: list[str] = []
    i = 0
    while len(val) < n_val or len(train) < n_train:
        name = f"seller-{i}"
        bucket = val if seller_split(name, 0.2) == "val" else train
        if len(bucket) < (n_val if bucket is val else n_train):
            bucket.append(name)
        i += 1
    return val + train


def score_all(client: httpx.Client, items: list[tuple[str, int, str]]) -> list[dict[str, Any]]:
    """Score ``(label, seed, seller)`` images in requests of 16; every result must be ok."""
    out: list[dict[str, Any]] = []
    for start in range(0, len(items), 16):
        chunk = items[start : start + 16]
        body = {
            "items": [
                {
                    "image_base64": base64.b64encode(labelled_jpeg(label, seed)).decode(),
                    "seller_id": seller,
                    "listing_id": f"{label}-{seed}",
                }
                for label, seed, seller in chunk
            ]
        }
        r = client.post("/v1/score", json=body)
        assert r.status_code == 200, r.text
        results = r.json()["items"]
        assert all(res["status"] == "ok" for res in results), results
        out.extend(results)
    return out


def login(base_url: str, name: str) -> tuple[httpx.Client, str]:
    """A moderator's client and CSRF token."""
    return Live(base_url, None, None).login(name, PASSWORD)  # type: ignore[arg-type]


def decide_everything(
    client: httpx.Client, csrf: str, admin: httpx.Client, truth: dict[str, str]
) -> int:
    """Claim and label every waiting item with its true label (by listing id); the count."""
    hdr = {"X-CSRF-Token": csrf}
    done = 0
    while True:
        claim = client.post("/review/api/claim", json={}, headers=hdr)
        assert claim.status_code == 200, claim.text
        ids = claim.json()["items"]
        if not ids:
            return done
        for item_id in ids:
            item = admin.get(f"/v1/review/items/{item_id}").json()
            body = {
                "item_id": item_id,
                "label": truth[item["listing_id"]],
                "reason_code": "visual",
            }
            r = client.post("/review/api/decide", json=body, headers=hdr)
            assert r.status_code == 200, r.text
            done += 1


def last_json(text: str) -> dict[str, Any]:
    """The last line of a command's output, parsed."""
    return dict(json.loads(text.strip().splitlines()[-1]))


def photos_for_drift(n: int) -> list[tuple[str, int, str]]:
    """``n`` photos of every label from one seller."""
    return [
        (label, 90_000 + li * 1000 + i, "seller-x")
        for li, label in enumerate(LABELS)
        for i in range(n)
    ]
