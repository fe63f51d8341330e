"""``karung retrain [--db URL] [--data DIR ...] --out RUN [--dry-run] [--force]``.

Moderators' decisions (exported from the database) plus any labelled folders become a
challenger of the served model; it is compared with the champion on held-out real photos,
exported and parity-gated, and promoted through the swap record only when the gate passes (or
``--force``). The last line printed is one JSON object: ``promoted``, ``champion``,
``challenger`` (each with its metrics) and ``report``.
"""

from __future__ import annotations

import argparse
import getpass
from pathlib import Path
from typing import Any


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``karung retrain``."""
    parser.add_argument("--db", help="database URL: export its decided review items and promote")
    parser.add_argument("--data", action="append", default=[], help="labelled folder; repeatable")
    parser.add_argument("--out", required=True, help="run folder (challenger/, report.md)")
    parser.add_argument(
        "--dry-run", action="store_true", help="compare and report, promote nothing"
    )
    parser.add_argument("--force", action="store_true", help="promote even if the gate refuses")
    parser.add_argument("--model", help="champion folder (default: the served model)")
    parser.add_argument("--fallback-model", help=argparse.SUPPRESS)
    parser.add_argument("--base", help="base set .npz (default: MODEL/retrain_base.npz)")
    parser.add_argument("--actor", default="", help="who promotes (default: the OS user)")
    parser.add_argument("--labelled-weight", type=float, default=10.0, help="weight of a label")
    parser.add_argument("--l2", type=float, default=0.1, help="L2 strength of the head")
    parser.add_argument("--no-int8", action="store_true", help="export fp32 ONNX only (faster)")
    gate = parser.add_argument_group("gate (non-inferiority margins, see the report)")
    gate.add_argument("--false-block-margin", type=float, default=0.005)
    gate.add_argument("--recall-margin", type=float, default=0.02)
    gate.add_argument("--auc-margin", type=float, default=0.005)
    parser.add_argument(
        "--shuffle-labels",
        action="store_true",
        help="gate check: train on shuffled labels (a worse challenger the gate must refuse)",
    )
    parser.add_argument("--job", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _actor(args: argparse.Namespace) -> str:
    if args.actor:
        return str(args.actor)
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _champion_path(args: argparse.Namespace, sessions: Any) -> Path:
    """``--model``, else the newest swap's model, else the configured default."""
    from karung.vision.modeldir import ModelDir, default_model_dir

    if args.model:
        return ModelDir.at(args.model).root
    if sessions is not None:
        from karung.serve.model_history import current_path

        with sessions() as session:
            here = current_path(session)
        if here:
            return ModelDir.at(here).root
    return ModelDir.at(args.fallback_model or default_model_dir()).root


def _export_reviewed(sessions: Any, out: Path) -> list[str]:
    """Decided review items as ``OUT/reviewed`` (split by seller); [] when there are none."""
    from karung.serve.review.export import export_dataset

    with sessions() as session:
        summary = export_dataset(session, out / "reviewed", progress=False)
    print(f"reviewed: {summary.images} decided items ({summary.labels}; {summary.splits})")
    return [str(out / "reviewed")] if summary.images else []


def _side(version: str, path: Path, metrics: dict[str, Any]) -> dict[str, Any]:
    return {"version": version, "path": str(path), "metrics": metrics}


def run(args: argparse.Namespace) -> int:
    """Retrain, judge and (maybe) promote; 0 unless the retrain itself failed."""
    from karung.training.runtime import prefer_passive_threads

    prefer_passive_threads()
    from karung.cli.common import die, print_json_line

    engine, sessions = _open(args.db)
    try:
        _job_status(sessions, args.job, "running")
        result = _retrain(args, sessions)
    except Exception as exc:  # recorded on the job row, then reported like any CLI error
        _job_status(sessions, args.job, "failed", error=f"{type(exc).__name__}: {exc}")
        if engine is not None:
            engine.dispose()
        return die(f"retrain failed: {exc}")
    _job_status(sessions, args.job, "done", result=result)
    if engine is not None:
        engine.dispose()
    print_json_line(result)
    return 0


def _open(url: str | None) -> tuple[Any, Any]:
    if url is None:
        return None, None
    from karung.serve.db import make_engine, migrate, session_factory

    engine = make_engine(url)
    migrate(engine)
    return engine, session_factory(engine)


def _job_status(sessions: Any, job_id: int | None, status: str, **kw: Any) -> None:
    if sessions is None or job_id is None:
        return
    from karung.serve.retrain_jobs import set_status

    with sessions.begin() as session:
        set_status(session, job_id, status, **kw)


def _job(
    args: argparse.Namespace, data: tuple[str, ...], reviewed: list[str], champion: Path
) -> Any:
    """The training-side description of this retrain."""
    from karung.training.retrain.compare import GatePolicy
    from karung.training.retrain.fit import FitOptions
    from karung.training.retrain.run import RetrainJob

    return RetrainJob(
        champion=champion,
        data=data,
        out=Path(args.out),
        reviewed=tuple(reviewed),
        base=Path(args.base) if args.base else None,
        fit=FitOptions(
            l2=args.l2, labelled_weight=args.labelled_weight, shuffle_labels=args.shuffle_labels
        ),
        gate=GatePolicy(
            false_block_margin=args.false_block_margin,
            recall_margin=args.recall_margin,
            auc_margin=args.auc_margin,
        ),
        int8=not args.no_int8,
        threads=args.threads,
        progress=not args.quiet,
    )


def _retrain(args: argparse.Namespace, sessions: Any) -> dict[str, Any]:
    from karung.training.retrain.run import retrain

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    reviewed = _export_reviewed(sessions, out) if sessions is not None else []
    data = tuple(reviewed + list(args.data))
    if not data:
        raise ValueError("no labelled data: pass --db with decided review items, or --data DIR")
    champion = _champion_path(args, sessions)
    outcome = retrain(_job(args, data, reviewed, champion))
    gate_ok = outcome.comparison.passed and outcome.exported
    promote = outcome.exported and (gate_ok or args.force) and not args.dry_run
    why = "promoted" if promote else _why_not(args, outcome, sessions)
    swap_id = None
    if promote and sessions is not None:
        swap_id = _promote(sessions, outcome, _actor(args), forced=not gate_ok)
    elif promote:
        promote, why = False, "no --db: nothing to promote into"
    return {
        "promoted": bool(promote),
        "decision": why,
        "gate_passed": gate_ok,
        "reasons": outcome.comparison.reasons()
        + ([outcome.export_error] * bool(outcome.export_error)),
        "swap_id": swap_id,
        **_sides(outcome, champion),
        "seconds": outcome.summary["seconds"],
        "stages": outcome.summary["stages"],
        "report": str(outcome.report),
    }


def _sides(outcome: Any, champion: Path) -> dict[str, Any]:
    """``champion`` and ``challenger`` with their metrics and CIs, and the held-out counts."""
    cmp = outcome.comparison
    return {
        "champion": _side(outcome.champion.model_version, champion, cmp.side("champion")),
        "challenger": _side(
            outcome.challenger_version, outcome.challenger_dir, cmp.side("challenger")
        ),
        "held_out": {"positives": cmp.positives, "negatives": cmp.negatives},
    }


def _why_not(args: argparse.Namespace, outcome: Any, sessions: Any) -> str:
    if not outcome.exported:
        return "refused: the challenger failed export or parity"
    if args.dry_run:
        return "dry run: nothing promoted"
    return "refused by the gate"


def _promote(sessions: Any, outcome: Any, actor: str, *, forced: bool) -> int:
    from karung.serve.model_history import promote

    with sessions.begin() as session:
        return promote(
            session,
            outcome.challenger_dir.resolve(),
            outcome.challenger_version,
            actor=actor,
            forced=forced,
            previous=outcome.champion.model_version,
            comparison=outcome.comparison.to_dict(),
        )
