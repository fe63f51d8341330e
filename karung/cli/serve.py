"""``karung serve``: run the scoring service with uvicorn (settings from ``KARUNG_*``)."""

from __future__ import annotations

import argparse
import os
import tempfile
from typing import TYPE_CHECKING, Any

from karung.cli.common import add_backend, die

if TYPE_CHECKING:  # the service's modules are imported only when it starts
    from karung.serve.settings import Settings


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``karung serve``; each overrides its ``KARUNG_*`` setting."""
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    parser.add_argument("--model", help="checkpoint file or model dir (KARUNG_MODEL)")
    add_backend(parser, None, "KARUNG_BACKEND")
    parser.add_argument("--db", help="SQLAlchemy database URL (KARUNG_DB)")
    parser.add_argument("--data-dir", help="state directory (KARUNG_DATA_DIR)")
    parser.add_argument(
        "--allow-private-networks",
        action="store_true",
        default=None,
        help="let the URL fetcher reach 127.0.0.1 and private networks (local demos only)",
    )
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING (KARUNG_LOG_LEVEL)")
    parser.add_argument(
        "--workers",
        type=int,
        help="service processes sharing the port (KARUNG_WORKERS, default 1; one per core "
        "for throughput)",
    )


def run(args: argparse.Namespace) -> int:
    """Start the service and block until it is stopped (Ctrl-C / SIGTERM)."""
    from pydantic import ValidationError

    from karung.serve.logs import configure_logging
    from karung.serve.settings import Settings

    overrides = _overrides(args)
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        return die(f"invalid settings: {exc}")
    configure_logging(settings.log_level, settings.log_json)
    if settings.workers == 1:
        from karung.serve.app import create_app

        _run_uvicorn(create_app(settings), args, workers=1)
    else:
        _run_workers(settings, overrides, args)
    return 0


def _run_uvicorn(app: Any, args: argparse.Namespace, workers: int) -> None:
    import uvicorn

    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        workers=workers,
        factory=workers > 1,
        log_config=None,  # keep our JSON handler on uvicorn.error
        access_log=False,  # the request middleware writes the access log with request ids
        # X-Forwarded-For is the app's business (KARUNG_TRUSTED_PROXIES, default none), not
        # uvicorn's, whose default believes any loopback peer.
        proxy_headers=False,
        timeout_graceful_shutdown=15,
    )


def _run_workers(settings: Settings, overrides: dict[str, Any], args: argparse.Namespace) -> None:
    """Run ``settings.workers`` processes on one socket (uvicorn's supervisor restarts a dead
    one). Work that must happen once (migrations, the first admin key) happens here first;
    workers read their settings from the environment this sets."""
    from karung.serve.app import prepare
    from karung.serve.metrics import MULTIPROC_ENV

    swaps_after = prepare(settings)
    for field, value in overrides.items():
        os.environ[f"KARUNG_{field.upper()}"] = str(value)
    os.environ["KARUNG_MODEL_SWAPS_AFTER"] = str(swaps_after)
    os.environ.pop("KARUNG_ADMIN_KEY", None)  # created above; workers need not see it
    with tempfile.TemporaryDirectory(prefix="karung-metrics-") as metrics_dir:
        os.environ[MULTIPROC_ENV] = metrics_dir  # counters summed over workers at /metrics
        _run_uvicorn("karung.serve.app:create_worker_app", args, workers=settings.workers)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    names = {
        "model": "model",
        "backend": "backend",
        "db": "db",
        "data_dir": "data_dir",
        "allow_private_networks": "allow_private_networks",
        "log_level": "log_level",
        "workers": "workers",
    }
    return {field: getattr(args, arg) for arg, field in names.items() if getattr(args, arg)}
