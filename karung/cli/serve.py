"""``karung serve``: run the scoring service with uvicorn (settings from ``KARUNG_*``)."""

from __future__ import annotations

import argparse
from typing import Any

from karung.cli.common import die
from karung.vision.backend_names import BACKENDS


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``karung serve``; each overrides its ``KARUNG_*`` setting."""
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    parser.add_argument("--model", help="checkpoint file or model dir (KARUNG_MODEL)")
    parser.add_argument("--backend", choices=list(BACKENDS), help="KARUNG_BACKEND")
    parser.add_argument("--db", help="SQLAlchemy database URL (KARUNG_DB)")
    parser.add_argument("--data-dir", help="state directory (KARUNG_DATA_DIR)")
    parser.add_argument(
        "--allow-private-networks",
        action="store_true",
        default=None,
        help="let the URL fetcher reach 127.0.0.1 and private networks (local demos only)",
    )
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING (KARUNG_LOG_LEVEL)")


def run(args: argparse.Namespace) -> int:
    """Start the service and block until it is stopped (Ctrl-C / SIGTERM)."""
    import uvicorn
    from pydantic import ValidationError

    from karung.serve.app import create_app
    from karung.serve.logs import configure_logging
    from karung.serve.settings import Settings

    try:
        settings = Settings(**_overrides(args))
    except ValidationError as exc:
        return die(f"invalid settings: {exc}")
    configure_logging(settings.log_level, settings.log_json)
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_config=None,  # keep our JSON handler on uvicorn.error
        access_log=False,  # the request middleware writes the access log with request ids
        timeout_graceful_shutdown=15,
    )
    return 0


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    names = {
        "model": "model",
        "backend": "backend",
        "db": "db",
        "data_dir": "data_dir",
        "allow_private_networks": "allow_private_networks",
        "log_level": "log_level",
    }
    return {field: getattr(args, arg) for arg, field in names.items() if getattr(args, arg)}
