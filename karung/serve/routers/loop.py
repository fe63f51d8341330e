"""The retraining loop's admin endpoints (scope ``admin``): retrain jobs, model history, rollback.

``POST /v1/admin/retrain`` records a job and starts ``karung retrain`` in a child process (the
service never imports the training stack); ``GET /v1/admin/retrain/{id}`` polls it. Promotion
and rollback are swap records, so every worker and replica follows them.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from karung.serve.deps import AdminScope, SessionDep, SessionsDep, SettingsDep
from karung.serve.errors import Conflict, NotFound
from karung.serve.model_history import RollbackError, history, rollback
from karung.serve.retrain_jobs import (
    RetrainJobRecord,
    RetrainRequest,
    create_job,
    job_view,
    start_job,
)

router = APIRouter(prefix="/v1/admin", tags=["admin"])


class RetrainIn(BaseModel):
    """A retrain request; ``data`` adds labelled folders on the server beside the review export."""

    dry_run: bool = False
    force: bool = False
    data: list[str] = Field(default_factory=list, max_length=16)
    int8: bool = Field(default=True, description="also export int8 (parity-gated)")


@router.post("/retrain", status_code=status.HTTP_202_ACCEPTED)
def post_retrain(
    body: RetrainIn, who: AdminScope, sessions: SessionsDep, settings: SettingsDep
) -> dict[str, Any]:
    """Record a retrain job and start it; poll ``GET /v1/admin/retrain/{id}``."""
    req = RetrainRequest(
        f"key:{who.name}", body.dry_run, body.force, tuple(body.data), int8=body.int8
    )
    with sessions.begin() as session:
        row = create_job(session, req, settings.data_dir / "retrain")
        view = job_view(row)
    start_job(view["id"], view["out"], req, settings.db, settings.model)
    return view


@router.get("/retrain/{job_id}")
def get_retrain(job_id: int, _: AdminScope, session: SessionDep) -> dict[str, Any]:
    """A retrain job's status, and its result once done."""
    row = session.get(RetrainJobRecord, job_id)
    if row is None:
        raise NotFound(f"no retrain job {job_id}")
    return job_view(row)


@router.get("/models")
def get_models(_: AdminScope, session: SessionDep, limit: int = 50) -> dict[str, Any]:
    """Model history: swaps newest first, with each model's lineage."""
    return {"models": [h.to_dict() for h in history(session, min(max(limit, 1), 500))]}


@router.post("/models/rollback")
async def post_rollback(
    who: AdminScope, sessions: SessionsDep, settings: SettingsDep
) -> dict[str, Any]:
    """Swap back to the current model's parent; audited; every replica follows."""

    def work() -> dict[str, Any]:
        with sessions.begin() as session:
            return rollback(session, actor=f"key:{who.name}", fallback=settings.model).to_dict()

    try:
        entry = await run_in_threadpool(work)
    except RollbackError as exc:
        raise Conflict(str(exc)) from exc
    return {"rolled_back_to": entry}
