"""Diverse review sampling: photos far from every queued or labelled one reach moderators."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from loop.loopkit import login, score_all

from karung.serve.review.diverse import DiverseSampler


class CountingRandom(random.Random):
    def __init__(self) -> None:
        super().__init__(0)
        self.draws = 0

    def random(self) -> float:
        self.draws += 1
        return super().random()


def test_sampler_share_zero_draws_nothing_and_near_photos_are_not_novel() -> None:
    rng = CountingRandom()
    grey = np.full((1, 32, 32, 3), 128, dtype=np.uint8)
    assert DiverseSampler(0.0, 0.1).pick(grey, rng, "g0") is None and rng.draws == 0
    sampler = DiverseSampler(1.0, 0.1)
    assert sampler.pick(grey, rng, "g1") == "diverse"  # nothing known yet: novel
    assert sampler.pick(grey + 5, rng, "g2") is None  # 5/255 away from a known photo
    red = np.zeros_like(grey)
    red[..., 0] = 255
    assert sampler.pick(red, rng, "r1") == "diverse" and sampler.known == 2


def test_service_queues_a_new_style_once_and_the_queue_page_shows_the_share(
    replicas: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KARUNG_REVIEW_DIVERSE_SHARE", "1.0")
    monkeypatch.setenv("KARUNG_REVIEW_DIVERSE_REFRESH_SECONDS", "0.1")
    db = f"sqlite:///{tmp_path / 'diverse.db'}"
    service = replicas(db, review_sample_allow=0.0, review_sample_block=0.0)
    style_a = [("garment", seed, "s1") for seed in range(6)]
    style_b = [("sack", 100 + seed, "s2") for seed in range(6)]
    with service.client() as admin:
        results = score_all(admin, style_a) + score_all(admin, style_b)
    queued = [r for r in results if r["review_item_id"] is not None]
    # The model allows them all; one photo of each style goes to moderators for its novelty.
    assert all(r["decision"] == "allow" for r in results)
    assert len(queued) == 2 and {r["listing_id"].split("-")[0] for r in queued} == {
        "garment",
        "sack",
    }
    mod, _ = login(service.base_url, "ana")
    page = mod.get("/review").text
    assert "diverse: 2 of 2 queued (100%)" in page and "sampling 100.0% of unqueued photos" in page
    models = mod.get("/review/models")
    assert models.status_code == 200 and "No model swap recorded" in models.text
    mod.close()


def test_a_picked_photo_is_known_once_after_its_queue_item_is_read(tmp_path: Path) -> None:
    """The sampler remembers a pick at once, then its queue item on the next refresh; the
    provisional copy is dropped then, so the photo is compared with once, not twice."""
    from PIL import Image

    from karung.serve.db import make_engine, migrate, session_factory
    from karung.serve.review.queue import QueueItemIn, enqueue, make_thumbnail

    engine = make_engine(f"sqlite:///{tmp_path / 'review.db'}")
    migrate(engine)
    sessions = session_factory(engine)
    rng = random.Random(0)
    sampler = DiverseSampler(1.0, 0.1)
    red = np.zeros((64, 64, 3), dtype=np.uint8)
    red[..., 0] = 230
    assert sampler.pick(red, rng, "ab" * 32) == "diverse" and sampler.known == 1
    item = QueueItemIn(
        sha256="ab" * 32,
        thumbnail=make_thumbnail(Image.fromarray(red)),
        scores={"bale": 0.1},
        risk=0.1,
        model_decision="allow",
        model_version="m",
        block_threshold=0.8,
        reason="diverse",
    )
    with sessions() as session:
        enqueue(session, item)
        session.commit()
    assert sampler.refresh(sessions) == 1
    assert sampler.known == 1  # the queue item's embedding replaced the provisional one
    assert (
        sampler.pick(red + 3, rng, "cd" * 32) is None
    )  # and it still makes a near photo not novel
    engine.dispose()
