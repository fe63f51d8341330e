"""The FastAPI application: ``create_app(settings)`` wires stores, model, fetcher and routers.

Start-up (``lifespan``) opens the database and applies every migration branch, creates the first
admin key on an empty database (printed once), opens the hash bank, loads the model (a missing
model leaves ``/readyz`` not-ready and ``/v1/score`` answering 503 while the bank API works), then
starts the micro-batcher, the bank poller and the review area's background jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from karung import __version__
from karung.serve import errors
from karung.serve.admission import DecodeMemory
from karung.serve.auth.authenticator import Authenticator
from karung.serve.auth.keys import ensure_admin_key
from karung.serve.bank.service import BankService
from karung.serve.batcher import MicroBatcher
from karung.serve.db import make_engine, migrate, schema_lock, session_factory
from karung.serve.fetch import Fetcher
from karung.serve.fetch_targets import Resolver
from karung.serve.intake import IntakePool, auto_mode
from karung.serve.limits import BodyLimitMiddleware
from karung.serve.logs import RequestContextMiddleware
from karung.serve.metrics import Metrics
from karung.serve.review import setup as review_setup
from karung.serve.routers import admin, bank, loop, ops, review_api, score, sellers
from karung.serve.runtime import ModelHolder
from karung.serve.scoring import DecodeLimits, Scorer
from karung.serve.settings import Settings
from karung.serve.swaps import Swap, latest_swap, latest_swap_id

log = logging.getLogger("karung.serve")


def create_worker_app() -> FastAPI:
    """The app of one ``karung serve --workers N`` process (a uvicorn factory): settings come
    from the environment the parent prepared, and logging is configured here because spawned
    workers start with nothing of the parent's."""
    from karung.serve.logs import configure_logging

    settings = Settings()
    configure_logging(settings.log_level, settings.log_json)
    return create_app(settings)


def prepare(settings: Settings) -> int:
    """What must happen once before workers start: the data dir, migrations and the first admin
    key (printed once). Returns the newest model swap id, which the workers start after."""
    engine, sessions = _open_database(settings)
    try:
        with sessions() as session:
            return latest_swap_id(session)
    finally:
        engine.dispose()


def _open_database(settings: Settings) -> tuple[Engine, sessionmaker[Session]]:
    """The data dir, the engine with every migration applied, and the first admin key; done
    by each worker's start-up and, once before any worker starts, by :func:`prepare`."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.db)
    try:
        sessions = session_factory(engine)
        with schema_lock(engine):  # the first admin key too: two first starts make one key
            migrate(engine)
            _bootstrap_admin_key(sessions, settings)
    except BaseException:
        engine.dispose()
        raise
    return engine, sessions


def create_app(settings: Settings | None = None, *, resolver: Resolver | None = None) -> FastAPI:
    """Build the service. ``resolver`` replaces DNS for the fetcher (tests, split-horizon DNS)."""
    settings = settings or Settings()
    metrics = Metrics()
    app = FastAPI(
        title="karung scoring service",
        version=__version__,
        description="Score listing photos for used-clothing bales; manage the re-upload hash bank.",
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.resolver = resolver
    app.state.bank = None
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_request_bytes,
        # A score request is its items (flat objects), the list and a thresholds object.
        max_containers=4 * settings.max_items + 64,
    )
    # Added last, so outermost: even a 413 from the body limit gets a request id and a log line.
    app.add_middleware(RequestContextMiddleware, observer=metrics.observe_request)
    if settings.trusted_proxies:  # only then is X-Forwarded-For the client's address
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxies))
    errors.install(app)
    for module in (score, bank, sellers, review_api, admin, loop, ops):
        app.include_router(module.router)
    review_setup.install(app)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    engine, sessions = await asyncio.to_thread(_open_database, settings)
    app.state.engine, app.state.sessions = engine, sessions
    app.state.auth = Authenticator(sessions, settings.auth_cache_seconds)
    app.state.bank = await asyncio.to_thread(_open_bank, engine, settings)
    # Half the cores for the model, the rest for fetching, decoding and hashing beside it.
    threads = settings.inference_threads or max(1, (os.cpu_count() or 2) // 2)
    models = ModelHolder(settings.model, settings.backend, threads)
    await asyncio.to_thread(_load_model, models, sessions, settings.model_swaps_after)
    app.state.models = models
    _track(app)
    cores = os.cpu_count() or 2
    workers = settings.decode_workers or cores
    mode = settings.intake_mode
    intake = IntakePool(workers, auto_mode(settings.workers, cores) if mode == "auto" else mode)
    await intake.warm()
    decode_pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="karung-decode")
    batcher = MicroBatcher(
        settings.batch_max_size,
        settings.batch_max_wait_ms / 1000,
        on_batch=app.state.metrics.inference_batch.observe,
        inline=intake.mode == "loop",  # the whole item on one thread
    )
    batcher.start()
    app.state.scorer = _scorer(app, batcher, intake, decode_pool)
    pollers = [
        asyncio.create_task(_poll_bank(app), name="bank-poller"),
        asyncio.create_task(_poll_models(app), name="model-poller"),
    ]
    try:
        async with review_setup.running(app):
            yield
    finally:
        for poller in pollers:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        app.state.metrics.close()
        await batcher.stop()
        decode_pool.shutdown(wait=False, cancel_futures=True)
        intake.shutdown()
        engine.dispose()


def _scorer(
    app: FastAPI, batcher: MicroBatcher, intake: IntakePool, decode_pool: ThreadPoolExecutor
) -> Scorer:
    settings: Settings = app.state.settings
    return Scorer(
        fetcher=Fetcher(
            settings.fetch_limits(),
            resolver=app.state.resolver,
            on_slots=lambda key, n: app.state.metrics.fetch_in_flight.labels(key).set(n),
        ),
        batcher=batcher,
        intake=intake,
        decode_pool=decode_pool,
        sessions=app.state.sessions,
        metrics=app.state.metrics,
        bank=lambda: app.state.bank,
        max_bytes=max(settings.max_upload_bytes, settings.fetch_max_bytes),
        max_pixels=settings.max_pixels,
        decode=DecodeLimits(
            max_decode_bytes=settings.max_decode_bytes,
            request_pixels=settings.max_request_decode_pixels,
            wait_seconds=settings.decode_wait_seconds,
        ),
        memory=DecodeMemory(
            max(settings.decode_memory_bytes, settings.max_decode_bytes),
            on_change=app.state.metrics.decode_memory.set,
        ),
    )


def _track(app: FastAPI) -> None:
    metrics: Metrics = app.state.metrics
    metrics.track_model_loaded(lambda: 1.0 if app.state.models.loaded else 0.0)
    metrics.track_index_size(lambda: float(getattr(app.state.bank, "index_size", 0) or 0))
    metrics.track_model_rechecked(lambda: app.state.models.rechecked_share)


def _bootstrap_admin_key(sessions: sessionmaker[Session], settings: Settings) -> None:
    """Create the first admin key on an empty database; print a generated one exactly once."""
    supplied = settings.admin_key.get_secret_value() if settings.admin_key else None
    with sessions() as session, session.begin():
        plaintext = ensure_admin_key(session, supplied)
    if plaintext is None:
        return
    # Printed, never logged: log pipelines keep lines forever, a terminal does not.
    print(
        "\n".join(
            [
                "=" * 72,
                "karung: created the first API key (scope admin). It is shown only once:",
                f"    {plaintext}",
                "Use it as 'Authorization: Bearer <key>'; make more with `karung keys create`.",
                "=" * 72,
            ]
        ),
        file=sys.stderr,
        flush=True,
    )
    log.warning("created the first admin API key (printed once on stderr)")


def _open_bank(engine: Engine, settings: Settings) -> BankService | None:
    """The hash bank with its index loaded, or ``None`` (logged) when it cannot be opened."""
    try:
        return BankService(
            engine,
            max_bytes=max(settings.max_upload_bytes, settings.fetch_max_bytes),
            max_pixels=settings.max_pixels,
            max_decode_bytes=settings.max_decode_bytes,
        )
    except Exception:  # scoring still works without a bank; readiness says not-ready
        log.exception("hash bank unavailable")
        return None


def _load_model(
    models: ModelHolder, sessions: sessionmaker[Session], swaps_after: int | None
) -> None:
    """Start on the configured model, or on a swap made since the serve run began (a worker
    restarted by ``karung serve --workers`` rejoins its siblings' model)."""
    swap = None
    with sessions() as session:
        if swaps_after is None:  # a new replica: older swaps are not its business
            models.swap_id = latest_swap_id(session)
        else:
            models.swap_id = swaps_after
            swap = latest_swap(session, swaps_after)
    if swap is None or not models.follow(swap):
        models.try_load()


async def _poll_models(app: FastAPI) -> None:
    """Follow model swaps recorded by other workers or replicas; refresh the scrape gauges."""
    settings: Settings = app.state.settings
    models: ModelHolder = app.state.models
    while True:
        await asyncio.sleep(settings.model_poll_seconds)
        try:
            app.state.metrics.refresh()
            swap = await asyncio.to_thread(_newer_swap, app.state.sessions, models.swap_id)
            if swap is not None and await asyncio.to_thread(models.follow, swap):
                app.state.metrics.model_swaps.inc()
                log.info("followed model swap %d to %s", swap.id, swap.path)
        except Exception:
            log.exception("model swap poll failed")


def _newer_swap(sessions: sessionmaker[Session], after: int) -> Swap | None:
    with sessions() as session:
        return latest_swap(session, after)


async def _poll_bank(app: FastAPI) -> None:
    """Follow bank changes made by other replicas or the CLI (a version number is polled)."""
    settings: Settings = app.state.settings
    while True:
        await asyncio.sleep(settings.bank_poll_seconds)
        bank = app.state.bank
        if bank is None:
            continue
        try:
            await asyncio.to_thread(bank.refresh_if_changed)
        except Exception:
            log.exception("bank refresh failed")
