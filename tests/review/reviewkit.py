"""Support code of the review tests (imported as ``review.reviewkit``; ``tests`` is on the path)."""

from __future__ import annotations

import hashlib
import re
import socket
import threading
import time
from collections.abc import Callable
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


def tiny_checkpoint(seed: int = 1) -> Any:
    """A random-weight 64 px detector (scores vary by image; no download)."""
    import torch

    from karung.vision.checkpoint import Checkpoint
    from karung.vision.labels import LABELS
    from karung.vision.model import build_model
    from karung.vision.preprocess import Preprocessing

    torch.manual_seed(seed)
    model = build_model(len(LABELS), pretrained=False)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_var.fill_(1e-2)
        head = model.get_submodule("classifier.1")
        head.weight.normal_(0, 0.05)
        head.bias.normal_(0, 1.0)
    return Checkpoint.from_model(model, LABELS, preprocessing=Preprocessing(input_size=64))


def start_uvicorn(app: Any) -> tuple[str, Callable[[], None]]:
    """Run ``app`` in a thread on a free 127.0.0.1 port; return its URL and a stop function."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the service did not start")
        time.sleep(0.05)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()

    return f"http://127.0.0.1:{sock.getsockname()[1]}", stop
