"""Rolling per-day risk distributions and review-band share (migration branch ``loop``).

Each scored batch adds its items to one row per (UTC day, model version): counts in
:data:`BINS` equal-width risk bins, the number scored and the number the model sent to the review
band. One atomic ``UPDATE ... SET b03 = b03 + :n`` per batch (an ``INSERT`` the first time a day
is seen), so concurrent workers and replicas never lose counts and no per-image row is written.

``karung drift`` compares the last seven days with the model's *reference week* (its first seven
days in service, or the days given) by the population stability index and the Kolmogorov-Smirnov
distance of the binned distributions; ``/metrics`` exposes today's and the reference's figures.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Column, Integer, String, Table, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from karung.serve.db import Base
from karung.serve.verdict import ScoredItem

BINS: Final = 20
BIN_COLUMNS: Final = tuple(f"b{i:02d}" for i in range(BINS))
PSI_ALERT: Final = 0.2  # the usual "significant shift" line of the population stability index
EPS: Final = 1e-4
log = logging.getLogger(__name__)


# A core table (not an ORM class): twenty bin columns, only ever summed or incremented.
RISK_DAILY: Final = Table(
    "risk_daily",
    Base.metadata,
    Column("day", String(10), primary_key=True),
    Column("model_version", String(128), primary_key=True),
    Column("scored", Integer, nullable=False),
    Column("review_band", Integer, nullable=False),
    Column("blocked", Integer, nullable=False),
    *(Column(name, Integer, nullable=False) for name in BIN_COLUMNS),
)


def bin_of(risk: float) -> int:
    """The bin index of a risk in ``[0, 1]``."""
    return min(BINS - 1, max(0, int(risk * BINS)))


@dataclass(frozen=True)
class RiskSample:
    """What drift keeps of one scored image: the model, its risk and its own decision."""

    model_version: str
    risk: float
    model_decision: str

    @classmethod
    def of(cls, item: ScoredItem) -> RiskSample:
        """The sample of a scored item (the model's decision, not the bank's)."""
        return cls(item.model_version, item.risk, str(item.model_decision))


def _tally(samples: Iterable[RiskSample]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for sample in samples:
        row = out.setdefault(sample.model_version[:128], {})
        col = BIN_COLUMNS[bin_of(sample.risk)]
        row[col] = row.get(col, 0) + 1
        row["scored"] = row.get("scored", 0) + 1
        row["review_band"] = row.get("review_band", 0) + (sample.model_decision == "review")
        row["blocked"] = row.get("blocked", 0) + (sample.model_decision == "block")
    return out


def add_counts(session: Session, day: str, version: str, counts: Mapping[str, int]) -> None:
    """Add ``counts`` to the day's row atomically, creating it when missing."""
    table = RISK_DAILY
    key = (table.c.day == day) & (table.c.model_version == version)
    values = {c: table.c[c] + n for c, n in counts.items()}
    if session.execute(update(table).where(key).values(values)).rowcount:  # type: ignore[attr-defined]
        return
    fresh = {c: 0 for c in (*BIN_COLUMNS, "scored", "review_band", "blocked")}
    fresh.update(counts)
    try:
        with session.begin_nested():
            session.execute(insert(table).values(day=day, model_version=version, **fresh))
    except IntegrityError:  # another worker created the row first: add to it
        session.execute(update(table).where(key).values(values))


def record_batch(
    sessions: sessionmaker[Session],
    samples: Sequence[RiskSample],
    now: datetime | None = None,
) -> None:
    """Add one scored batch to today's rows (one transaction); never raises."""
    tally = _tally(samples)
    if not tally:
        return
    day = (now or datetime.now(UTC)).date().isoformat()
    try:
        with sessions() as session, session.begin():
            for version, counts in tally.items():
                add_counts(session, day, version, counts)
    except Exception:  # drift figures must never fail a scoring request
        log.exception("could not record the risk distribution of a batch")


@dataclass(frozen=True)
class Window:
    """Summed histogram of a range of days."""

    start: str
    end: str
    counts: list[int]
    scored: int
    review_band: int

    @property
    def review_share(self) -> float:
        """Share of scored items the model sent to the review band."""
        return self.review_band / self.scored if self.scored else 0.0


def window(session: Session, start: date, end: date, version: str | None = None) -> Window:
    """Sum the rows of ``[start, end]`` (inclusive), of one model or of all."""
    t = RISK_DAILY.c
    query = select(RISK_DAILY).where(t.day >= start.isoformat(), t.day <= end.isoformat())
    if version:
        query = query.where(t.model_version == version)
    counts, scored, band = [0] * BINS, 0, 0
    for row in session.execute(query).mappings():
        for i, col in enumerate(BIN_COLUMNS):
            counts[i] += int(row[col] or 0)
        scored += int(row["scored"])
        band += int(row["review_band"])
    return Window(start.isoformat(), end.isoformat(), counts, scored, band)


def first_day(session: Session, version: str) -> date | None:
    """The first day a model version scored anything."""
    t = RISK_DAILY.c
    row = session.scalars(
        select(t.day).where(t.model_version == version).order_by(t.day).limit(1)
    ).first()
    return date.fromisoformat(row) if row else None


def _shares(counts: Sequence[int]) -> list[float]:
    total = sum(counts)
    return [max(c / total, EPS) if total else 1.0 / len(counts) for c in counts]


def psi(reference: Sequence[int], current: Sequence[int]) -> float:
    """Population stability index of two binned distributions (empty bins floored at 1e-4)."""
    p, q = _shares(reference), _shares(current)
    return float(sum((b - a) * math.log(b / a) for a, b in zip(p, q, strict=True)))


def ks(reference: Sequence[int], current: Sequence[int]) -> float:
    """Largest gap between the two binned cumulative distributions."""
    ta, tb = sum(reference) or 1, sum(current) or 1
    ca = cb = 0.0
    gap = 0.0
    for a, b in zip(reference, current, strict=True):
        ca, cb = ca + a / ta, cb + b / tb
        gap = max(gap, abs(ca - cb))
    return gap


def compare_weeks(
    session: Session, version: str, today: date, reference_start: date | None = None
) -> dict[str, Any]:
    """This week (``today`` and the 6 days before) against the model's reference week."""
    start = reference_start or first_day(session, version) or today
    ref = window(session, start, start + timedelta(days=6), version)
    cur = window(session, today - timedelta(days=6), today)
    value = psi(ref.counts, cur.counts) if ref.scored and cur.scored else 0.0
    return {
        "model_version": version,
        "reference": {
            "start": ref.start,
            "end": ref.end,
            "scored": ref.scored,
            "review_share": ref.review_share,
        },
        "current": {
            "start": cur.start,
            "end": cur.end,
            "scored": cur.scored,
            "review_share": cur.review_share,
        },
        "psi": value,
        "ks": ks(ref.counts, cur.counts) if ref.scored and cur.scored else 0.0,
        "psi_threshold": PSI_ALERT,
        "moved": bool(value > PSI_ALERT),
    }


def gauge_values(
    session: Session, version: str, today: date | None = None
) -> tuple[dict[str, tuple[list[float], float]], float]:
    """What ``/metrics`` shows: bin shares and review-band share of today, this week and the
    model's reference week, and this week's PSI against the reference."""
    day = today or datetime.now(UTC).date()
    report = compare_weeks(session, version, day)
    start = date.fromisoformat(report["reference"]["start"])
    wins = {
        "today": window(session, day, day),
        "week": window(session, day - timedelta(days=6), day),
        "reference": window(session, start, start + timedelta(days=6), version),
    }
    out = {
        name: ([c / w.scored if w.scored else 0.0 for c in w.counts], w.review_share)
        for name, w in wins.items()
    }
    return out, float(report["psi"])


def refresh_drift(metrics: Any, sessions: sessionmaker[Session], version: str) -> None:
    """Set ``metrics``' drift gauges from the database; a failure leaves them as they were."""
    try:
        with sessions() as session:
            windows, value = gauge_values(session, version)
        metrics.set_drift(windows, value)
    except Exception:  # a scrape must answer even when the database does not
        log.exception("could not read the drift figures")
