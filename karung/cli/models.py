"""``karung models list|show|rollback``: the served model's history, lineage and rollback.

History comes from the swap records every replica follows, each with the ``lineage.json`` of
its folder. ``rollback`` swaps back to the current model's parent in one command, writes an
audit line and every worker and replica follows within its poll interval.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the sub-commands of ``karung models``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", help="database URL (default: $KARUNG_DB or the local SQLite file)")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    lst = sub.add_parser("list", help="swaps, newest first, with parents", parents=[common])
    lst.add_argument("--limit", type=int, default=20)
    show = sub.add_parser(
        "show", help="lineage of a model folder (default: current)", parents=[common]
    )
    show.add_argument("path", nargs="?", help="model folder")
    back = sub.add_parser(
        "rollback", help="swap back to the current model's parent", parents=[common]
    )
    back.add_argument("--actor", default="cli", help="who rolls back (audit log)")
    back.add_argument("--model", help="current model when no swap is recorded")


def run(args: argparse.Namespace) -> int:
    """Dispatch; 1 on a usage or data error."""
    from karung.cli.common import die
    from karung.serve.db import make_engine, migrate, session_factory
    from karung.serve.model_history import RollbackError

    engine = make_engine(args.db)
    try:
        migrate(engine)
        sessions = session_factory(engine)
        handler = {"list": _list, "show": _show, "rollback": _rollback}[args.action]
        return handler(sessions, args)
    except RollbackError as exc:
        return die(str(exc))
    finally:
        engine.dispose()


def _list(sessions: Any, args: argparse.Namespace) -> int:
    from karung.serve.model_history import history

    with sessions() as session:
        rows = history(session, args.limit)
    if not rows:
        print("no model swaps recorded (the service runs its configured model)")
    for h in rows:
        parent = h.lineage.parent_version if h.lineage else "-"
        by = h.lineage.promoted_by if h.lineage and h.lineage.promoted_by else "-"
        print(
            f"#{h.swap_id}  {h.created_at}  {h.model_version}  parent={parent}  by={by}  {h.path}"
        )
    return 0


def _show(sessions: Any, args: argparse.Namespace) -> int:
    from karung.serve.model_history import current_path
    from karung.vision.lineage import read_lineage
    from karung.vision.modeldir import default_model_dir

    path = args.path
    if path is None:
        with sessions() as session:
            path = current_path(session) or str(default_model_dir())
    lineage = read_lineage(Path(path))
    print(
        json.dumps({"path": str(path), "lineage": lineage.to_dict() if lineage else None}, indent=2)
    )
    return 0


def _rollback(sessions: Any, args: argparse.Namespace) -> int:
    from karung.serve.model_history import rollback

    with sessions.begin() as session:
        entry = rollback(
            session, actor=args.actor, fallback=Path(args.model) if args.model else None
        )
    print(json.dumps({"rolled_back_to": entry.to_dict()}))
    return 0
