"""Model history, promotion and rollback on top of the swap records (no training imports).

Promotion and rollback are ordinary swaps (:mod:`karung.serve.swaps`), so every worker and replica
follows them; each also writes one audit line (``model_promote`` / ``model_rollback``) in the same
transaction. The lineage of each model (``lineage.json`` in its folder, see
:mod:`karung.vision.lineage`) says which parent a rollback returns to.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from karung.serve.review import audit
from karung.serve.swaps import ModelSwapRecord, record_swap
from karung.vision.lineage import Lineage, mark_promoted, read_lineage


class RollbackError(ValueError):
    """There is nothing to roll back to (no swap recorded, or the current model has no parent)."""


@dataclass(frozen=True)
class HistoryEntry:
    """One swap record with the lineage of the model it installed."""

    swap_id: int
    path: str
    model_version: str
    backend: str
    created_at: str
    lineage: Lineage | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (CLI, admin API, review UI)."""
        lin = self.lineage
        return {
            "swap_id": self.swap_id,
            "path": self.path,
            "model_version": self.model_version,
            "backend": self.backend,
            "created_at": self.created_at,
            "parent_version": lin.parent_version if lin else "",
            "promoted_by": lin.promoted_by if lin else "",
            "lineage": lin.to_dict() if lin else None,
        }


def history(session: Session, limit: int = 50) -> list[HistoryEntry]:
    """The newest swaps first, each with its model's lineage (None for root models)."""
    rows = session.scalars(select(ModelSwapRecord).order_by(ModelSwapRecord.id.desc()).limit(limit))
    return [
        HistoryEntry(
            r.id,
            r.path,
            r.model_version,
            r.backend,
            r.created_at.isoformat(timespec="seconds") if r.created_at else "",
            read_lineage(r.path) if Path(r.path).exists() else None,
        )
        for r in rows
    ]


def current_path(session: Session) -> str | None:
    """The model folder of the newest swap, None when no swap was ever recorded."""
    row = session.scalars(
        select(ModelSwapRecord).order_by(ModelSwapRecord.id.desc()).limit(1)
    ).first()
    return row.path if row else None


def promote(
    session: Session,
    path: Path,
    model_version: str,
    *,
    actor: str,
    forced: bool,
    previous: str,
    comparison: dict[str, Any] | None = None,
) -> int:
    """Make ``path`` current for every replica; audit it; record the promoter in its lineage."""
    at = datetime.now(UTC).isoformat(timespec="seconds")
    swap_id = record_swap(session, str(path), "auto", model_version)
    audit.record(
        session,
        actor=actor,
        action="model_promote",
        before={"model_version": previous},
        after={
            "model_version": model_version,
            "path": str(path),
            "swap_id": swap_id,
            "forced": forced,
            "gate_passed": bool((comparison or {}).get("passed", False)),
        },
    )
    mark_promoted(path, actor, at, forced=forced)
    return swap_id


def rollback(session: Session, *, actor: str, fallback: Path | None = None) -> HistoryEntry:
    """Swap back to the current model's parent (one command); audited.

    Raises:
        RollbackError: no swap recorded and no ``fallback``, or the current model has no parent.
    """
    here = current_path(session) or (str(fallback) if fallback else None)
    if here is None:
        raise RollbackError("no model swap recorded: nothing to roll back")
    lineage = read_lineage(here)
    if lineage is None or not lineage.parent_path:
        raise RollbackError(f"the current model at {here} records no parent")
    swap_id = record_swap(session, lineage.parent_path, "auto", lineage.parent_version)
    audit.record(
        session,
        actor=actor,
        action="model_rollback",
        before={"model_version": lineage.model_version, "path": here},
        after={
            "model_version": lineage.parent_version,
            "path": lineage.parent_path,
            "swap_id": swap_id,
        },
    )
    session.flush()
    return HistoryEntry(
        swap_id,
        lineage.parent_path,
        lineage.parent_version,
        "auto",
        datetime.now(UTC).isoformat(timespec="seconds"),
        read_lineage(lineage.parent_path),
    )
