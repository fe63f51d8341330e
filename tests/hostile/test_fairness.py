"""One tenant cannot hold every fetch slot (issue 16 point 3)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from serve.servekit import ImageServer, LiveService

from karung.serve.fairness import KeySlots
from karung.serve.fetch import Fetcher, FetchLimits
from karung.serve.fetch_errors import FetchTimeout

LIMITS = FetchLimits(
    allow_private=True, concurrency=4, key_share=0.5, read_timeout=5.0, total_timeout=8.0
)


def test_another_key_is_served_while_one_key_floods_slow_urls(image_server: ImageServer) -> None:
    """Key A sends 8 slow URLs into 4 slots; key B's one fast URL finishes before any of A's."""

    async def scenario() -> list[str]:
        fetcher = Fetcher(LIMITS)
        done: list[str] = []

        async def one(key: str, path: str) -> None:
            await fetcher.fetch(image_server.url(path), key)
            done.append(key)

        flood = [asyncio.create_task(one("A", f"/delay/700/{i}.jpg")) for i in range(8)]
        await asyncio.sleep(0.1)  # A holds its share of the slots
        assert fetcher.slots.in_flight("A") == 8
        await one("B", "/img/5.jpg")
        await asyncio.gather(*flood)
        return done

    assert asyncio.run(scenario())[0] == "B"


def test_waiting_for_a_slot_counts_against_the_total_timeout(image_server: ImageServer) -> None:
    limits = FetchLimits(allow_private=True, concurrency=1, read_timeout=5.0, total_timeout=0.5)

    async def scenario() -> None:
        fetcher = Fetcher(limits)
        async with fetcher.slots.hold("A"):  # the only slot, held past B's total timeout
            with pytest.raises(FetchTimeout, match="slot wait included"):
                await fetcher.fetch(image_server.url("/img/2.jpg"), "B")
        await fetcher.fetch(image_server.url("/img/2.jpg"), "B")  # free again

    asyncio.run(scenario())


def test_key_share_is_at_least_one_slot() -> None:
    assert KeySlots(64, 0.25).per_key == 16
    assert KeySlots(3, 0.1).per_key == 1
    with pytest.raises(ValueError):
        KeySlots(4, 0.0)


def test_metrics_show_fetches_in_flight_per_key(
    service: LiveService, image_server: ImageServer
) -> None:
    items = [{"url": image_server.url(f"/delay/1500/{i}.jpg")} for i in range(3)]
    result: dict[str, Any] = {}

    def send() -> None:
        with service.client() as client:
            result["r"] = client.post("/v1/score", json={"items": items})

    sender = threading.Thread(target=send)
    sender.start()
    seen = ""
    deadline = time.monotonic() + 5
    with service.client(key=None) as anon:
        while time.monotonic() < deadline and 'karung_fetch_in_flight{key="admin"} 3.0' not in seen:
            seen = anon.get("/metrics").text
            time.sleep(0.05)
    sender.join()
    assert 'karung_fetch_in_flight{key="admin"} 3.0' in seen
    assert result["r"].status_code == 200
