"""``karung review``: moderator accounts, dataset export, queue and webhook status.

Examples::

    karung review moderators add ana --password-stdin < pw.txt
    karung review moderators list
    karung review export --out data/reviewed --since 2026-05-01
    karung review stats
    karung review agreement
    karung review outbox --requeue
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the sub-commands of ``karung review``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", help="database URL (default: $KARUNG_DB or the local SQLite file)")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    exp = sub.add_parser("export", help="write decided items as a training set", parents=[common])
    exp.add_argument("--out", required=True, help="output folder (images/ + manifest.csv)")
    exp.add_argument("--since", help="only items decided at or after this ISO date/datetime")
    exp.add_argument("--val-fraction", type=float, default=0.2, help="share of sellers in val")

    mods = sub.add_parser("moderators", help="manage moderator accounts")
    mod_sub = mods.add_subparsers(dest="mod_action", required=True, metavar="MOD_ACTION")
    for name, text in (("add", "create a moderator"), ("passwd", "set a new password")):
        p = mod_sub.add_parser(name, help=text, parents=[common])
        p.add_argument("name")
        p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    mod_sub.add_parser("list", help="list moderators", parents=[common])
    for name, text in (("disable", "lock an account out"), ("enable", "let it in again")):
        mod_sub.add_parser(name, help=text, parents=[common]).add_argument("name")

    sub.add_parser("stats", help="queue counts by status and reason", parents=[common])
    sub.add_parser("agreement", help="Cohen's kappa per moderator pair", parents=[common])
    outbox = sub.add_parser("outbox", help="webhook delivery status", parents=[common])
    outbox.add_argument("--requeue", action="store_true", help="retry events parked as dead")


def run(args: argparse.Namespace) -> int:
    """Dispatch to the chosen action; 0 on success.

    Usage and data errors are typed (:class:`karung.serve.review.errors.ReviewError`), reported
    by the CLI edge (exit 1).
    """
    from karung.serve.db import make_engine, migrate, session_factory

    engine = make_engine(args.db)
    try:
        migrate(engine)
        sessions = session_factory(engine)
        handler = {
            "export": _export,
            "moderators": _moderators,
            "stats": _stats,
            "agreement": _agreement,
            "outbox": _outbox,
        }[args.action]
        return handler(sessions, args)
    finally:
        engine.dispose()


def _export(sessions: Any, args: argparse.Namespace) -> int:
    from pathlib import Path

    from karung.serve.review.export import export_dataset, parse_since

    since = parse_since(args.since) if args.since else None
    with sessions() as session:
        summary = export_dataset(
            session, Path(args.out), since=since, val_fraction=args.val_fraction
        )
    labels = ", ".join(f"{k} {v}" for k, v in sorted(summary.labels.items())) or "none"
    splits = ", ".join(f"{k} {v}" for k, v in sorted(summary.splits.items())) or "none"
    print(f"wrote {summary.images} images to {summary.manifest.parent} ({labels}; {splits})")
    return 0


def _read_password(from_stdin: bool) -> str:
    from karung.serve.review.errors import PasswordsDiffer

    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise PasswordsDiffer("the passwords differ")
    return first


def _moderators(sessions: Any, args: argparse.Namespace) -> int:
    from karung.serve.review import accounts

    action = args.mod_action
    if action == "list":
        with sessions() as session:
            for mod in accounts.list_moderators(session):
                state = "disabled" if mod.disabled_at else "active"
                print(f"{mod.name:<24} {state:<9} since {mod.created_at:%Y-%m-%d}")
        return 0
    with sessions.begin() as session:
        if action == "add":
            accounts.add_moderator(session, args.name, _read_password(args.password_stdin))
        elif action == "passwd":
            accounts.set_password(session, args.name, _read_password(args.password_stdin))
        else:
            accounts.set_disabled(session, args.name, action == "disable")
    print(f"moderator {accounts.normalise_name(args.name)}: {action} done")
    return 0


def _stats(sessions: Any, args: argparse.Namespace) -> int:
    from sqlalchemy import func, select

    from karung.serve.review.claims import pending_count
    from karung.serve.review.models import ReviewItem

    with sessions() as session:
        rows = session.execute(
            select(ReviewItem.status, ReviewItem.reason, func.count(ReviewItem.id))
            .group_by(ReviewItem.status, ReviewItem.reason)
            .order_by(ReviewItem.status, ReviewItem.reason)
        ).all()
        waiting = pending_count(session)
    for status, reason, n in rows:
        print(f"{status:<8} {reason:<12} {n}")
    print(f"waiting for a moderator: {waiting}")
    return 0


def _agreement(sessions: Any, args: argparse.Namespace) -> int:
    from karung.serve.review.agreement import pair_agreements

    with sessions() as session:
        pairs = pair_agreements(session)
    print(f"{'moderator a':<20} {'moderator b':<20} {'items':>6} {'agree':>6} {'kappa':>6}")
    for p in pairs:
        kappa = "n/a" if p.kappa is None else f"{p.kappa:.3f}"
        print(f"{p.a:<20} {p.b:<20} {p.items:>6} {p.observed:>6.1%} {kappa:>6}")
    return 0


def _outbox(sessions: Any, args: argparse.Namespace) -> int:
    from karung.serve.review import outbox

    if args.requeue:
        with sessions.begin() as session:
            print(f"requeued {outbox.requeue_dead(session)} dead events")
    with sessions() as session:
        counts = outbox.counts(session)
    print(" ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "no events")
    return 0
