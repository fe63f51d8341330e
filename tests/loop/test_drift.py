"""Drift: per-day risk histograms in the database, PSI/KS against the reference week, /metrics."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kit.pg import fresh_database
from loop.loopkit import last_json, photos_for_drift, score_all
from sqlalchemy.orm import Session, sessionmaker

from karung.cli.main import main
from karung.serve.db import make_engine, migrate, session_factory
from karung.serve.drift import RiskSample, compare_weeks, ks, psi, record_batch, window

DAY0 = date(2026, 11, 2)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """A migrated database of each kind."""
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'drift.db'}"
        else:
            url = stack.enter_context(fresh_database())
        engine = make_engine(url)
        migrate(engine)
        stack.callback(engine.dispose)
        yield session_factory(engine)


def bodies(risks: list[float], version: str = "m1", band: tuple[float, float] = (0.3, 0.7)) -> Any:
    def decision(r: float) -> str:
        return "block" if r >= band[1] else "review" if r >= band[0] else "allow"

    return [RiskSample(version, r, decision(r)) for r in risks]


def at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


def test_a_new_style_moves_the_distribution_and_the_same_one_does_not(
    sessions: sessionmaker[Session],
) -> None:
    low = [0.02 * (i % 10) for i in range(200)]  # risks 0.00-0.18
    for d in range(7):
        record_batch(sessions, bodies(low), now=at(DAY0 + timedelta(days=d)))
    same_week = DAY0 + timedelta(days=14)
    for d in range(7):
        record_batch(sessions, bodies(low), now=at(same_week - timedelta(days=d)))
    with sessions() as session:
        stable = compare_weeks(session, "m1", same_week)
        assert stable["reference"]["start"] == DAY0.isoformat()
        assert stable["reference"]["scored"] == 1400 and stable["current"]["scored"] == 1400
        assert stable["psi"] < 0.01 and not stable["moved"]
    new_style = [0.35 + 0.03 * (i % 10) for i in range(150)]  # a wave in the review band
    later = same_week + timedelta(days=7)
    for d in range(3):
        record_batch(sessions, bodies(low[:100] + new_style), now=at(later - timedelta(days=d)))
    with sessions() as session:
        moved = compare_weeks(session, "m1", later)
    assert moved["moved"] and moved["psi"] > 0.2 and moved["ks"] > 0.3
    assert moved["current"]["review_share"] > 0.5 > moved["reference"]["review_share"]


def test_concurrent_batches_lose_no_counts(sessions: sessionmaker[Session]) -> None:
    def work() -> None:
        for _ in range(10):
            record_batch(sessions, bodies([0.1, 0.5, 0.9]), now=at(DAY0))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with sessions() as session:
        w = window(session, DAY0, DAY0)
    assert w.scored == 120 and w.review_band == 40 and sum(w.counts) == 120


def test_psi_and_ks_of_binned_distributions() -> None:
    assert psi([10, 10, 10], [10, 10, 10]) == pytest.approx(0.0)
    assert ks([10, 0], [0, 10]) == pytest.approx(1.0)
    assert psi([100, 0], [50, 50]) > psi([100, 0], [90, 10]) > 0


def test_service_records_drift_exposes_metrics_and_the_cli_reports(
    replicas: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path / 'svc.db'}"
    service = replicas(db, review_sample_allow=0.0, review_sample_block=0.0)
    with service.client() as admin:
        scored = score_all(admin, photos_for_drift(20))
        text = admin.get("/metrics").text
    assert 'karung_review_band_share{window="today"}' in text
    shares = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("karung_risk_share{bin=") and 'window="today"' in line
    ]
    assert len(shares) == 20 and sum(shares) == pytest.approx(1.0)
    capsys.readouterr()
    assert main(["drift", "--db", db]) == 0
    report = last_json(capsys.readouterr().out)
    assert report["current"]["scored"] == len(scored) and report["moved"] is False
    assert report["model_version"] == scored[0]["model_version"]
