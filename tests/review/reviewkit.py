"""Support code of the review tests (imported as ``review.reviewkit``; ``tests`` is on the path)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
from PIL import Image
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from karung.serve.review.queue import QueueItemIn, make_thumbnail


def migrate_review(engine: Engine) -> None:
    """Apply the ``review`` branch only (other areas' tables are not needed here)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", "karung.serve:migrations")
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "review@head")


def tiny_image(seed: int, size: int = 48) -> Image.Image:
    """A deterministic textured RGB image (different seeds give perceptually different images)."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, size=(6, 6, 3), dtype=np.uint8)
    img = Image.fromarray(blocks, "RGB").resize((size, size), Image.Resampling.BILINEAR)
    noise = rng.integers(-12, 12, size=(size, size, 3))
    return Image.fromarray(np.clip(np.asarray(img) + noise, 0, 255).astype(np.uint8), "RGB")


def queue_item(seed: int, **overrides: Any) -> QueueItemIn:
    """A review-band queue item built from :func:`tiny_image`."""
    image = overrides.pop("image", None) or tiny_image(seed)
    risk = float(overrides.pop("risk", 0.7))
    fields: dict[str, Any] = {
        "sha256": hashlib.sha256(f"img-{seed}".encode()).hexdigest(),
        "thumbnail": make_thumbnail(image),
        "scores": {"bale": risk / 2, "sack": risk / 2, "garment": 1 - risk, "other": 0.0},
        "risk": risk,
        "model_decision": "review",
        "model_version": "test-model",
        "block_threshold": 0.9,
        "listing_id": f"listing-{seed}",
        "seller_id": f"seller-{seed % 7}",
        "url": f"https://cdn.example/{seed}.jpg",
    }
    fields.update(overrides)
    return QueueItemIn(**fields)


# --- a live service (create_app under uvicorn on a free loopback port) -------------------------

ADMIN_KEY = "krg_review_test_admin_0123456789abcdef"
PASSWORD = "correct horse battery staple"


@dataclass
class Live:
    """A running service: its base URL, app and database."""

    base_url: str
    app: Any
    sessions: sessionmaker[Session]

    def client(self, **kw: Any) -> httpx.Client:
        """A plain HTTP client (no cookies yet) on the service."""
        return httpx.Client(base_url=self.base_url, timeout=30.0, **kw)

    def login(self, name: str, password: str = PASSWORD) -> tuple[httpx.Client, str]:
        """A client logged in as ``name`` and the CSRF token of its session."""
        client = self.client()
        r = client.post("/review/login", data={"name": name, "password": password})
        assert r.status_code == 303, r.text
        page = client.get("/review/history")
        match = re.search(r'name="csrf-token" content="([0-9a-f]+)"', page.text)
        assert match, page.text[:500]
        return client, match.group(1)
