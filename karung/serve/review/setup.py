"""How the review area plugs into the service built by :func:`karung.serve.app.create_app`.

``create_app`` calls :func:`install` once while building the app (routers, templates, static
files, error mapping) and enters :func:`running` inside its lifespan, after ``app.state`` holds
``settings``, ``engine``, ``sessions``, ``bank`` and ``models``; the webhook outbox worker runs
there for the lifetime of the service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from karung.serve.review.errors import ReviewError
from karung.serve.review.outbox import OutboxWorker
from karung.serve.review.runtime import STATIC_DIR, ReviewRuntime
from karung.serve.review.settings import ReviewSettings

log = logging.getLogger(__name__)


def install(app: FastAPI, settings: ReviewSettings | None = None) -> None:
    """Mount ``/review`` (pages, JSON API, static files) on ``app``.

    ``settings`` defaults to :class:`ReviewSettings` read from ``KARUNG_REVIEW_*``.
    """
    from karung.serve.review import web

    app.state.review = ReviewRuntime.build(settings or ReviewSettings())
    app.include_router(web.router)
    app.mount("/review/static", StaticFiles(directory=STATIC_DIR), name="review-static")

    @app.exception_handler(ReviewError)
    async def _review_error(_: Request, exc: ReviewError) -> JSONResponse:
        return web.error_response(exc)


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[None]:
    """Run the webhook outbox worker and the diverse sampler's refresh while the service runs."""
    async with _diverse(app), _outbox(app):
        yield


@asynccontextmanager
async def _diverse(app: FastAPI) -> AsyncIterator[None]:
    """Hand the diverse sampler to the scorer and keep its known photos fresh."""
    rt: ReviewRuntime = app.state.review
    sampler = rt.diverse
    scorer = getattr(app.state, "scorer", None)
    if sampler is None or scorer is None:
        yield
        return
    scorer.diverse = sampler

    async def refresh() -> None:
        while True:
            try:
                await asyncio.to_thread(sampler.refresh, app.state.sessions)
            except Exception:  # a missed refresh only makes the sample a little less diverse
                log.exception("diverse sampler refresh failed")
            await asyncio.sleep(rt.settings.diverse_refresh_seconds)

    task = asyncio.create_task(refresh(), name="review-diverse")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@asynccontextmanager
async def _outbox(app: FastAPI) -> AsyncIterator[None]:
    """Run the webhook outbox worker when a webhook is configured."""
    rt: ReviewRuntime = app.state.review
    if rt.webhook is None:
        yield
        return
    worker = OutboxWorker(app.state.sessions, rt.webhook)
    rt.worker = worker
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop), name="review-outbox")
    log.info("webhook outbox worker started for %s", rt.webhook.url)
    try:
        yield
    finally:
        stop.set()
        # An attempt in flight may take up to the HTTP timeout; it is retried if cut short.
        try:
            await asyncio.wait_for(task, timeout=rt.webhook.timeout_seconds + 1)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        rt.worker = None
