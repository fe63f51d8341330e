"""``karung drift``: has this week's risk distribution moved away from the model's reference week?

The service keeps one histogram row per day and model (:mod:`karung.serve.drift`). This compares
the last seven days with the model's reference week (its first seven days in service, or
``--reference-start``) by the population stability index (alert above ``--threshold``, 0.2 by
default) and the Kolmogorov-Smirnov distance, prints both with the review-band shares, and says
plainly when the distribution moved: a new photo style shows up here before takedowns pile up.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, date, datetime
from typing import Any


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``karung drift``."""
    parser.add_argument("--db", help="database URL (default: $KARUNG_DB or the local SQLite file)")
    parser.add_argument("--model-version", help="reference model (default: the newest one seen)")
    parser.add_argument("--reference-start", help="first day of the reference week (ISO date)")
    parser.add_argument("--today", help="last day of the current week (default: today, UTC)")
    parser.add_argument("--threshold", type=float, default=0.2, help="PSI above which it moved")
    parser.add_argument("--fail-on-drift", action="store_true", help="exit 3 when it moved")


def _newest_version(session: Any) -> str:
    from sqlalchemy import select

    from karung.serve.drift import RISK_DAILY
    from karung.serve.swaps import ModelSwapRecord

    swapped = session.scalars(
        select(ModelSwapRecord.model_version).order_by(ModelSwapRecord.id.desc()).limit(1)
    ).first()
    if swapped:
        return str(swapped)
    t = RISK_DAILY.c
    seen = session.scalars(select(t.model_version).order_by(t.day.desc()).limit(1)).first()
    return str(seen or "")


def run(args: argparse.Namespace) -> int:
    """Print the comparison; 3 with ``--fail-on-drift`` when it moved, 1 without data."""
    from karung.cli.common import die
    from karung.serve.db import make_engine, migrate, session_factory
    from karung.serve.drift import compare_weeks

    today = date.fromisoformat(args.today) if args.today else datetime.now(UTC).date()
    ref = date.fromisoformat(args.reference_start) if args.reference_start else None
    engine = make_engine(args.db)
    try:
        migrate(engine)
        with session_factory(engine)() as session:
            version = args.model_version or _newest_version(session)
            if not version:
                return die("no scored items recorded yet")
            report = compare_weeks(session, version, today, ref)
    finally:
        engine.dispose()
    report["psi_threshold"] = args.threshold
    report["moved"] = bool(report["psi"] > args.threshold)
    cur, base = report["current"], report["reference"]
    print(
        f"model {version}: this week {cur['start']}..{cur['end']} ({cur['scored']} scored, "
        f"review band {cur['review_share']:.1%}) vs reference {base['start']}..{base['end']} "
        f"({base['scored']} scored, review band {base['review_share']:.1%})"
    )
    verdict = "MOVED" if report["moved"] else "stable"
    print(f"PSI {report['psi']:.3f} (threshold {args.threshold}), KS {report['ks']:.3f}: {verdict}")
    if report["moved"]:
        print("the risk distribution moved: look for a new photo style in the review queue")
    print(json.dumps(report))
    return 3 if report["moved"] and args.fail_on_drift else 0
