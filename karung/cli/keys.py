"""``karung keys create|list|revoke``: API keys of the scoring service."""

from __future__ import annotations

import argparse
import json
from typing import Any


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the sub-commands of ``karung keys``."""
    parser.add_argument("--db", help="database URL (default: KARUNG_DB or the data dir's SQLite)")
    sub = parser.add_subparsers(dest="action", required=True)
    create = sub.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", required=True, help="who the key is for, unique")
    create.add_argument(
        "--scopes",
        default="score",
        help="comma-separated: score, bank:read, bank:write, review, admin (default score)",
    )
    create.add_argument("--block-threshold", type=float, help="this client's block threshold")
    create.add_argument("--review-threshold", type=float, help="this client's review threshold")
    listing = sub.add_parser("list", help="list keys (never the secrets)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    revoke = sub.add_parser("revoke", help="revoke a key by name or id")
    revoke.add_argument("ident", help="key name, clear id (after krg_) or numeric id")


def run(args: argparse.Namespace) -> int:
    """Run the chosen action against the service database (migrating it first)."""
    from karung.serve.db import default_db_url, make_engine, migrate, session_factory

    engine = make_engine(args.db or default_db_url())
    try:
        migrate(engine)
        with session_factory(engine)() as session:
            # A duplicate name or an unknown scope: reported with its code by karung.cli.main.
            return _ACTIONS[args.action](session, args)
    finally:
        engine.dispose()


def _create(session: Any, args: argparse.Namespace) -> int:
    from karung.serve.auth.keys import create_key

    info, secret = create_key(
        session,
        args.name,
        args.scopes,
        block_threshold=args.block_threshold,
        review_threshold=args.review_threshold,
    )
    session.commit()
    print(f"created key {info.name!r} (id {info.id}, scopes {info.scopes}); shown only once:")
    print(secret)
    return 0


def _list(session: Any, args: argparse.Namespace) -> int:
    from karung.serve.auth.keys import list_keys

    for info in list_keys(session):
        state = f"revoked {info.revoked_at:%Y-%m-%d}" if info.revoked_at else "active"
        if args.json:
            print(
                json.dumps(
                    {
                        "id": info.id,
                        "name": info.name,
                        "key_id": info.key_id,
                        "scopes": info.scopes.split(","),
                        "state": state,
                    }
                )
            )
        else:
            print(f"{info.id:>4}  krg_{info.key_id}_…  {info.name:<24} {info.scopes:<32} {state}")
    return 0


def _revoke(session: Any, args: argparse.Namespace) -> int:
    from karung.serve.auth.keys import revoke_key

    info = revoke_key(session, args.ident)
    session.commit()
    print(f"revoked key {info.name!r} (id {info.id})")
    return 0


_ACTIONS = {"create": _create, "list": _list, "revoke": _revoke}
