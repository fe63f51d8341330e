"""Operations: liveness, readiness and Prometheus metrics (no API key needed)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from karung.serve.deps import EngineDep, MetricsDep, ModelsDep, SessionsDep
from karung.serve.drift import refresh_drift

router = APIRouter(tags=["ops"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive and serving HTTP."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request, models: ModelsDep, engine: EngineDep) -> JSONResponse:
    """Ready when the model and the bank index are loaded and the database answers."""
    checks: dict[str, Any] = {
        "model": models.loaded,
        "bank": getattr(request.app.state, "bank", None) is not None,
        "database": await run_in_threadpool(_ping, engine),
    }
    ready = all(checks.values())
    body: dict[str, Any] = {"status": "ready" if ready else "not_ready", "checks": checks}
    if models.info is not None:
        body["model_version"] = models.info.model_version
    elif models.error:
        body["model_error"] = models.error
    return JSONResponse(body, status_code=200 if ready else 503)


def _ping(engine: Any) -> bool:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception:
        return False
    return True


@router.get("/metrics", response_class=Response)
async def metrics(metrics: MetricsDep, sessions: SessionsDep, models: ModelsDep) -> Response:
    """Prometheus exposition of this instance's metrics (drift gauges read from the database)."""
    version = models.info.model_version if models.info else ""
    await run_in_threadpool(refresh_drift, metrics, sessions, version)
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
