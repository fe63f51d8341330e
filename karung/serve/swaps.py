"""Hot model swaps shared by every replica of the service (migration branch ``service``).

A swap is made on one worker (``POST /v1/admin/model``), which loads the checkpoint, then
records it here. Every worker polls :func:`latest_swap` and loads a newer record, so all the
workers of ``karung serve --workers N`` (and replicas on other hosts sharing the database)
end up on the same model. A worker that starts later follows the swaps made since its serve
run began (``Settings.model_swaps_after``), not older ones: a restart returns to the
configured model, as it does with one worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import DateTime, Integer, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from karung.serve.auth.models import utcnow
from karung.serve.db import Base


class ModelSwapRecord(Base):
    """One swap: the checkpoint and backend that became current, and when."""

    __tablename__ = "model_swaps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(String(1024))
    backend: Mapped[str] = mapped_column(String(32))
    model_version: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


@dataclass(frozen=True)
class Swap:
    """A recorded swap as plain values."""

    id: int
    path: str
    backend: str
    model_version: str


def record_swap(session: Session, path: str, backend: str, model_version: str) -> int:
    """Record a swap that one worker has made; return its id (the caller commits)."""
    row = ModelSwapRecord(path=path, backend=backend, model_version=model_version[:128])
    session.add(row)
    session.flush()
    return row.id


def latest_swap_id(session: Session) -> int:
    """The id of the newest swap, 0 when none was ever recorded."""
    return int(session.scalar(select(func.max(ModelSwapRecord.id))) or 0)


def latest_swap(session: Session, after: int) -> Swap | None:
    """The newest swap with an id above ``after``, or None when there is none."""
    row = session.scalars(
        select(ModelSwapRecord)
        .where(ModelSwapRecord.id > after)
        .order_by(ModelSwapRecord.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return Swap(row.id, row.path, row.backend, row.model_version)
