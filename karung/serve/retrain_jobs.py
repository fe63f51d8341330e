"""Retrain jobs started from the admin API (migration branch ``loop``).

``POST /v1/admin/retrain`` records a job and starts ``python -m karung.cli.main retrain --job ID``
as a child process: the service never imports the training stack, and a retrain (minutes of CPU)
never runs inside a serving worker. The CLI marks the job running, then done (with its final JSON
line) or failed; ``GET /v1/admin/retrain/{id}`` reads the row.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, Session, mapped_column

from karung.serve.db import Base
from karung.serve.review.models import UTCDateTime, utcnow


class RetrainJobRecord(Base):
    """One requested retrain and what became of it."""

    __tablename__ = "model_retrain_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    requested_by: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued|running|done|failed
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    force: Mapped[bool] = mapped_column(Boolean, default=False)
    out: Mapped[str] = mapped_column(String(1024))
    result: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)


@dataclass(frozen=True)
class RetrainRequest:
    """What an admin asked for."""

    requested_by: str
    dry_run: bool = False
    force: bool = False
    data: tuple[str, ...] = ()
    int8: bool = True


def create_job(session: Session, req: RetrainRequest, runs_dir: Path) -> RetrainJobRecord:
    """Record a queued job with its own run folder (the caller commits)."""
    row = RetrainJobRecord(
        requested_by=req.requested_by[:128], dry_run=req.dry_run, force=req.force, out=""
    )
    session.add(row)
    session.flush()
    row.out = str(runs_dir / f"retrain-{row.id:05d}")
    return row


def start_job(job_id: int, run_dir: str, req: RetrainRequest, db_url: str, model: Path) -> None:
    """Start the CLI on the job in a child process (its log: ``OUT/retrain.log``)."""
    out = Path(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "karung.cli.main", "retrain", "--db", db_url, "--out", run_dir]
    cmd += ["--job", str(job_id), "--actor", req.requested_by, "--fallback-model", str(model)]
    cmd += ["--quiet"] + (["--dry-run"] if req.dry_run else []) + (["--force"] if req.force else [])
    cmd += [] if req.int8 else ["--no-int8"]
    for d in req.data:
        cmd += ["--data", d]
    with (out / "retrain.log").open("ab") as log:
        subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def set_status(
    session: Session, job_id: int, status: str, *, result: Any = None, error: str | None = None
) -> None:
    """Move a job on (the caller commits); ``result`` is stored as JSON."""
    row = session.get(RetrainJobRecord, job_id)
    if row is None:
        raise LookupError(f"no retrain job {job_id}")
    row.status = status
    if result is not None:
        row.result = json.dumps(result)
    if error is not None:
        row.error = error[:4000]
    if status in ("done", "failed"):
        row.finished_at = utcnow()


def job_view(row: RetrainJobRecord) -> dict[str, Any]:
    """A job as plain data for the API."""
    plain = ("id", "status", "requested_by", "dry_run", "force", "out", "error")
    view: dict[str, Any] = {name: getattr(row, name) for name in plain}
    for stamp in ("created_at", "finished_at"):
        value = getattr(row, stamp)
        view[stamp] = value.isoformat() if value else None
    view["result"] = json.loads(row.result) if row.result else None
    return view
