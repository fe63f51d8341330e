"""``karung backfill INPUT... --out DIR``: score, hash and bank-match a catalogue on Ray Data."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from karung.cli.common import add_backend

if TYPE_CHECKING:
    from karung.batch.runner import BackfillConfig
    from karung.serve.fetch import FetchLimits


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``karung backfill``."""
    parser.add_argument(
        "inputs", nargs="+", help="CSV/Parquet files with url or path (+ listing_id, seller_id), "
        "folders of them, or folders of images",
    )  # fmt: skip
    parser.add_argument("--out", required=True, type=Path, help="output folder (resumable)")
    parser.add_argument("--model", help="checkpoint file or model dir (default: shipped model)")
    add_backend(
        parser, "onnx", "onnx (default): the first parity-checked export, the same on every "
        "node; auto times the exports on each worker, which may pick differently per CPU",
    )  # fmt: skip
    parser.add_argument("--db", help="database of the bank and review queue (default: $KARUNG_DB "
                        "or the data dir's SQLite; 'none' for no bank)")  # fmt: skip
    parser.add_argument("--address", help="Ray cluster (ray://host:10001 or host:6379); "
                        "default $RAY_ADDRESS, else an embedded local Ray")  # fmt: skip
    parser.add_argument("--shard-size", type=int, default=1000, help="inputs per output file")
    parser.add_argument("--batch-size", type=int, default=16, help="images per model call")
    parser.add_argument("--actors", type=int, help="scoring actors (default: one per CPU)")
    parser.add_argument("--limit", type=int, help="only the first N inputs (a dry run)")
    parser.add_argument("--enqueue-review", action="store_true",
                        help="send review-band items to the service's review queue")  # fmt: skip
    parser.add_argument("--record-matches", action="store_true",
                        help="record bank matches as seller links (like the service)")  # fmt: skip
    parser.add_argument("--add-to-bank", metavar="NAME", help="bank photos with risk >= --min-risk")
    parser.add_argument("--min-risk", type=float, help="risk at or above which --add-to-bank banks")
    parser.add_argument("--block-threshold", type=float, help="override the model's")
    parser.add_argument("--review-threshold", type=float, help="override the model's")
    parser.add_argument("--allow-network", action="append", default=[], metavar="CIDR",
                        help="let the fetcher reach this network (like "
                        "KARUNG_FETCH_ALLOWED_NETWORKS; repeatable)")  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    """Run the backfill; 0 when every row scored, 2 when some rows are errors.

    Setup errors (options, inputs, another job in ``--out``, a model without the backend's
    export) are typed errors (:class:`karung.errors.KarungError`), reported by the CLI edge
    (exit 1).
    """
    from karung.batch.runner import run_backfill

    config = _config(args)
    summary = run_backfill(config)
    brief = {k: summary[k] for k in ("rows", "decisions", "errors", "run", "database_writes")}
    print(json.dumps({**brief, "out": str(config.out)}, sort_keys=True))
    return 2 if summary["errors"] else 0


def _config(args: argparse.Namespace) -> BackfillConfig:
    from dataclasses import replace

    from karung.batch.runner import BackfillConfig
    from karung.batch.scorer import ScorerOptions
    from karung.serve.db import default_db_url
    from karung.vision.modeldir import default_model_dir

    db = None if args.db == "none" else (args.db or default_db_url())
    limits = _fetch_limits()
    fetch = replace(limits, allowed_networks=(*limits.allowed_networks, *args.allow_network))
    return BackfillConfig(
        inputs=tuple(args.inputs),
        out=args.out,
        model=Path(args.model or default_model_dir()),
        backend=args.backend,
        db=db,
        address=args.address or os.environ.get("RAY_ADDRESS") or None,
        shard_size=args.shard_size,
        batch_size=args.batch_size,
        actors=args.actors,
        limit=args.limit,
        enqueue_review=args.enqueue_review,
        add_to_bank=args.add_to_bank,
        min_risk=args.min_risk,
        record_matches=args.record_matches,
        progress=not args.no_progress,
        scorer=ScorerOptions(
            fetch=fetch,
            block_threshold=args.block_threshold,
            review_threshold=args.review_threshold,
        ),
    )


def _fetch_limits() -> FetchLimits:
    """The service's fetch limits, from the same ``KARUNG_*`` settings (SSRF rules, caps,
    timeouts): a backfill fetches exactly what the service would.

    Raises:
        BackfillConfigError: a ``KARUNG_*`` setting is invalid.
    """
    from pydantic import ValidationError

    from karung.batch.errors import BackfillConfigError
    from karung.serve.settings import Settings

    try:
        return Settings().fetch_limits()
    except ValidationError as exc:  # pydantic's error, typed for the CLI edge
        raise BackfillConfigError(f"invalid settings: {exc}") from exc
