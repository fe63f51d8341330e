"""Administration: swap the model without a restart, manage API keys (scope ``admin``)."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, status
from fastapi import Path as PathParam
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from karung.serve.auth.keys import (
    DuplicateKeyName,
    InvalidKey,
    KeyInfo,
    KeyNotFound,
    create_key,
    list_keys,
    revoke_key,
)
from karung.serve.auth.scopes import UnknownScope
from karung.serve.deps import (
    AdminScope,
    AuthenticatorDep,
    MetricsDep,
    ModelsDep,
    SessionDep,
    SessionsDep,
)
from karung.serve.errors import Conflict, InvalidInput, NotFound
from karung.serve.runtime import ModelHolder, ModelInfo
from karung.serve.swaps import record_swap
from karung.vision.errors import KarungVisionError

router = APIRouter(prefix="/v1/admin", tags=["admin"])


class ModelSwapIn(BaseModel):
    """Which checkpoint to load; omitted fields keep the current path and backend."""

    path: str | None = Field(
        default=None, description="checkpoint file or model directory on the server"
    )
    backend: Literal["auto", "torch", "onnx"] | None = None


class CheckpointRejected(InvalidInput):
    """The checkpoint could not be loaded; the old model stays."""

    code = "checkpoint_error"


@router.get("/model")
async def get_model(_: AdminScope, models: ModelsDep) -> dict[str, Any]:
    """The loaded model (or why none is) of the worker that answered."""
    return {
        "model": asdict(models.info) if models.info else None,
        "error": models.error,
        "worker": {"pid": os.getpid(), "swap_id": models.swap_id},
    }


@router.post("/model")
async def swap_model(
    body: ModelSwapIn,
    _: AdminScope,
    models: ModelsDep,
    metrics: MetricsDep,
    sessions: SessionsDep,
) -> dict[str, Any]:
    """Load a checkpoint and make it current; requests already running finish on the old one.

    The worker that answers swaps at once; the swap is recorded in the database and the other
    workers and replicas follow within their poll interval (``KARUNG_MODEL_POLL_SECONDS``).
    """
    previous = models.info.model_version if models.info else None
    path = Path(body.path) if body.path else None

    def record(info: ModelInfo) -> int:
        return _record(sessions, models, info)

    try:
        info = await run_in_threadpool(models.load, path, body.backend, record)
    except (KarungVisionError, ValueError, OSError) as exc:
        raise CheckpointRejected(f"cannot load the model: {exc}") from exc
    metrics.model_swaps.inc()
    return {"previous_version": previous, "model": asdict(info), "swap_id": models.swap_id}


def _record(sessions: sessionmaker[Session], models: ModelHolder, info: ModelInfo) -> int:
    with sessions() as session, session.begin():
        return record_swap(session, info.path, models.backend, info.model_version)


class KeyIn(BaseModel):
    """A new API key."""

    name: str = Field(min_length=1, max_length=128)
    scopes: list[str] = Field(min_length=1, examples=[["score"]])
    block_threshold: float | None = Field(default=None, ge=0, le=1)
    review_threshold: float | None = Field(default=None, ge=0, le=1)


def _key_out(info: KeyInfo) -> dict[str, Any]:
    out = asdict(info)
    out["scopes"] = info.scopes.split(",")
    return out


@router.get("/keys")
def get_keys(_: AdminScope, session: SessionDep) -> list[dict[str, Any]]:
    """Every key (never the secrets)."""
    return [_key_out(k) for k in list_keys(session)]


@router.post("/keys", status_code=status.HTTP_201_CREATED)
def post_key(body: KeyIn, _: AdminScope, session: SessionDep) -> dict[str, Any]:
    """Create a key; the answer holds the secret, shown this once."""
    try:
        info, secret = create_key(
            session,
            body.name,
            frozenset(body.scopes),
            block_threshold=body.block_threshold,
            review_threshold=body.review_threshold,
        )
        session.commit()
    except DuplicateKeyName as exc:
        raise Conflict(str(exc)) from exc
    except (UnknownScope, InvalidKey) as exc:
        raise InvalidInput(str(exc)) from exc
    return {**_key_out(info), "key": secret}


@router.delete("/keys/{ident}")
async def delete_key(
    ident: Annotated[str, PathParam(description="key name, clear id or numeric id")],
    _: AdminScope,
    session: SessionDep,
    auth: AuthenticatorDep,
) -> dict[str, Any]:
    """Revoke a key at once on this replica (others within the auth cache TTL)."""
    try:
        info = await run_in_threadpool(_revoke, session, ident)
    except KeyNotFound as exc:
        raise NotFound(str(exc)) from exc
    auth.invalidate()
    return _key_out(info)


def _revoke(session: Session, ident: str) -> KeyInfo:
    info = revoke_key(session, ident)
    session.commit()
    return info
