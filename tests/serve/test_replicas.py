"""Replicas sharing one database follow each other's model swaps (two apps, one SQLite file)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
from serve.servekit import LiveService

from karung.serve.swaps import record_swap


def version(client: httpx.Client) -> tuple[str, int]:
    body = client.get("/v1/admin/model").json()
    return body["model"]["model_version"], body["worker"]["swap_id"]


def wait_for(predicate: Any, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def pair(make_service: Any, tmp_path: Path, **overrides: Any) -> tuple[LiveService, LiveService]:
    db = f"sqlite:///{tmp_path / 'shared.db'}"
    first = make_service(db=db, model_poll_seconds=0.1, **overrides)
    second = make_service(db=db, model_poll_seconds=0.1, **overrides)
    return first, second


def test_a_swap_on_one_replica_reaches_the_other(
    make_service: Any, tmp_path: Path, model_dirs: tuple[Path, Path]
) -> None:
    first, second = pair(make_service, tmp_path)
    with first.client() as a, second.client() as b:
        old, _ = version(b)
        swap = a.post("/v1/admin/model", json={"path": str(model_dirs[1])})
        assert swap.status_code == 200, swap.text
        new = swap.json()["model"]["model_version"]
        assert new != old and version(a) == (new, swap.json()["swap_id"])
        assert wait_for(lambda: version(b)[0] == new), "the second replica kept the old model"
        assert version(b)[1] == swap.json()["swap_id"]
        swaps = [line for line in b.get("/metrics").text.splitlines()
                 if line.startswith("karung_model_swaps_total ")]  # fmt: skip
        assert swaps == ["karung_model_swaps_total 1.0"]
        # And back, the other way round.
        back = b.post("/v1/admin/model", json={"path": str(model_dirs[0])})
        assert back.status_code == 200
        assert wait_for(lambda: version(a)[0] == old)


def test_a_swap_a_replica_cannot_load_leaves_it_on_its_model(
    make_service: Any, tmp_path: Path, model_dirs: tuple[Path, Path]
) -> None:
    first, second = pair(make_service, tmp_path)
    with first.client() as a, second.client() as b:
        before, _ = version(b)
        with first.app.state.sessions() as session, session.begin():
            bad = record_swap(session, str(tmp_path / "missing-model"), "torch", "ghost")
        assert wait_for(lambda: b.get("/v1/admin/model").json()["error"] is not None)
        body = b.get("/v1/admin/model").json()
        assert body["model"]["model_version"] == before and f"swap {bad}" in body["error"]
        assert body["worker"]["swap_id"] == bad  # not retried on every poll
        assert b.get("/readyz").status_code == 200  # still serving the old model
        assert version(a)[0] == before


def test_a_new_replica_starts_on_its_configured_model(
    make_service: Any, tmp_path: Path, model_dirs: tuple[Path, Path]
) -> None:
    db = f"sqlite:///{tmp_path / 'shared.db'}"
    first = make_service(db=db)
    with first.client() as a:
        configured, _ = version(a)
        swapped = a.post("/v1/admin/model", json={"path": str(model_dirs[1])}).json()
    later = make_service(db=db)  # a restart returns to the configured model
    rejoining = make_service(db=db, model_swaps_after=swapped["swap_id"] - 1)
    with later.client() as b, rejoining.client() as c:
        assert version(b)[0] == configured
        assert version(c)[0] == swapped["model"]["model_version"]  # a restarted worker
