"""``karung bank ACTION``: manage the perceptual-hash bank of known-bad photos.

Actions: ``add PATH... --bank NAME [--seller ID] [--listing ID]``, ``match PATH...``, ``list``,
``remove ID...``, ``sellers``, ``export --out FILE.csv``, ``import FILE.csv``, ``enable NAME``,
``disable NAME``, ``configure NAME [--pdq N] [--phash N]``, ``rehash DIR...`` (re-hash entries
with the current hash version from the original photos, matched by sha256). ``export`` and
``import`` take ``--format karung|threatexchange``. The database is ``--db URL`` or
``$KARUNG_DB`` (default: SQLite under the user's data dir). Per-image commands print one JSON
object per line (errors as ``{"source", "error": {"code", "message"}}``) and exit 2 when any
item failed, like ``karung score``.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from karung.cli.common import die, error_line, iter_image_paths, print_json_line
from karung.vision.hash_kinds import KINDS

FORMATS = ("karung", "threatexchange")


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare ``karung bank ACTION [ARGS]``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", help="database URL (default: $KARUNG_DB or SQLite in the data dir)")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    _entry_actions(sub, common)
    _list_actions(sub, common)
    _bank_actions(sub, common)


def _entry_actions(sub: Any, common: argparse.ArgumentParser) -> None:
    """Actions on photos and entries: add, match, remove, rehash."""
    add = sub.add_parser("add", parents=[common], help="add images to a bank")
    add.add_argument("paths", nargs="+", help="image files or directories (walked)")
    add.add_argument("--bank", required=True, help="bank name (created on first use)")
    add.add_argument("--seller", help="seller id of the listing the photos came from")
    add.add_argument("--listing", help="listing id the photos came from")
    add.add_argument("--source-url", help="where the photo was found")
    add.add_argument("--added-by", help="who adds them (moderator, tool)")
    add.add_argument("--note", help="free text kept with the entries")

    match = sub.add_parser("match", parents=[common], help="match images against the bank")
    match.add_argument("paths", nargs="+", help="image files or directories (walked)")
    match.add_argument("--format", choices=["jsonl", "table"], default="jsonl")

    rm = sub.add_parser("remove", parents=[common], help="remove entries by id")
    rm.add_argument("ids", nargs="+", type=int, metavar="ID")

    rh = sub.add_parser(
        "rehash", parents=[common], help="re-hash entries from their original photos"
    )
    rh.add_argument("paths", nargs="+", help="the original photos (files or directories)")
    rh.add_argument("--all", action="store_true", help="also entries already at this version")


def _list_actions(sub: Any, common: argparse.ArgumentParser) -> None:
    """Reading and exchanging the bank: list, sellers, export, import."""
    lst = sub.add_parser("list", parents=[common], help="list entries (or banks with --banks)")
    lst.add_argument("--bank", help="only this bank")
    lst.add_argument("--limit", type=int, help="at most this many entries")
    lst.add_argument("--banks", action="store_true", help="list banks and their settings")

    sel = sub.add_parser("sellers", parents=[common], help="clusters of linked seller accounts")
    sel.add_argument("--seller", help="only the cluster of this seller")

    exp = sub.add_parser("export", parents=[common], help="write a CSV hash list (no images)")
    exp.add_argument("--out", required=True, help="CSV file to write ('-' for stdout)")
    exp.add_argument("--bank", help="only this bank")
    exp.add_argument("--format", choices=FORMATS, default="karung", help="CSV layout")

    imp = sub.add_parser("import", parents=[common], help="add the rows of a CSV hash list")
    imp.add_argument("file", help="CSV file ('-' for stdin)")
    imp.add_argument("--bank", help="bank for rows whose bank column is empty")
    imp.add_argument("--format", choices=FORMATS, default="karung", help="CSV layout")


def _bank_actions(sub: Any, common: argparse.ArgumentParser) -> None:
    """Settings of a bank: enable, disable, configure."""
    for name, text in (("enable", "match against a bank"), ("disable", "stop matching a bank")):
        toggle = sub.add_parser(name, parents=[common], help=text)
        toggle.add_argument("name", help="bank name")

    cfg = sub.add_parser("configure", parents=[common], help="set a bank's thresholds")
    cfg.add_argument("name", help="bank name (created when missing)")
    for kind in KINDS.values():
        cfg.add_argument(
            f"--{kind.name}",
            type=int,
            help=f"{kind.name} Hamming threshold (default {kind.default_threshold})",
        )
    cfg.add_argument("--description", help="what the bank holds")


def run(args: argparse.Namespace) -> int:
    """Open the bank and run the action; 0 ok, 2 when an item failed, 1 on a setup error."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        service = _open(args.db)
    except (SQLAlchemyError, OSError) as exc:
        return die(f"cannot open the bank database: {exc}")
    try:
        return int(ACTIONS[args.action](service, args))
    except SQLAlchemyError as exc:
        return die(f"database error: {exc}")


def _open(url: str | None) -> Any:
    from karung.serve.bank.service import BankService
    from karung.serve.db import default_db_url, make_engine, migrate

    engine = make_engine(url or default_db_url())
    migrate(engine)
    return BankService(engine, load=False)


def _images(paths: list[str]) -> Iterator[tuple[str, Any, str] | dict[str, Any]]:
    """(source, decoded image, sha256) per path, or an error line."""
    from karung.vision.decode import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS
    from karung.vision.errors import ImageDecodeError
    from karung.vision.hashing import decode_for_hashing

    for path in iter_image_paths(paths):
        source = str(path)
        try:
            data = Path(path).read_bytes()
            image = decode_for_hashing(
                data, max_bytes=DEFAULT_MAX_BYTES, max_pixels=DEFAULT_MAX_PIXELS
            )
        except ImageDecodeError as exc:
            yield error_line(source, exc.code, str(exc))
        except OSError as exc:
            yield error_line(source, "file_unreadable", str(exc))
        else:
            yield source, image, hashlib.sha256(data).hexdigest()


def _per_image(
    paths: list[str], handle: Callable[[str, Any, str], dict[str, Any]]
) -> Iterator[dict[str, Any]]:
    """``handle(source, image, sha256)`` per image; every failure becomes an error line."""
    from karung.serve.bank.errors import InvalidEntry
    from karung.vision.errors import KarungVisionError

    for item in _images(paths):
        if isinstance(item, dict):
            yield item
            continue
        try:
            yield handle(*item)
        except (KarungVisionError, InvalidEntry) as exc:
            yield error_line(item[0], exc.code, str(exc))


def _add(service: Any, args: argparse.Namespace) -> int:
    def handle(source: str, image: Any, sha: str) -> dict[str, Any]:
        result = service.add_decoded(
            image,
            sha,
            bank=args.bank,
            listing_id=args.listing,
            seller_id=args.seller,
            source_url=args.source_url,
            added_by=args.added_by,
            note=args.note,
        )
        entry = result.entry
        return {
            "source": source,
            "entry_id": entry.id,
            "bank": entry.bank,
            "created": result.created,
            "sha256": sha,
        }

    failures = 0
    for line in _per_image(args.paths, handle):
        failures += "error" in line
        print_json_line(line)
    return 2 if failures else 0


def _match(service: Any, args: argparse.Namespace) -> int:
    def handle(source: str, image: Any, sha: str) -> dict[str, Any]:
        return {"source": source, "matches": [m.to_dict() for m in service.match(image, sha)]}

    failures = 0
    if args.format == "table":
        print(f"{'matches':>7} {'best':<14} source")
    for line in _per_image(args.paths, handle):
        failures += "error" in line
        _emit_match(line, args.format)
    return 2 if failures else 0


def _emit_match(line: dict[str, Any], fmt: str) -> None:
    if fmt == "jsonl":
        print_json_line(line)
    elif "error" in line:
        print(f"{'ERROR':>7} {line['error']['code']:<14} {line['source']}")
    else:
        matches = line["matches"]
        best = f"{matches[0]['kind']}:{matches[0]['distance']}" if matches else "-"
        print(f"{len(matches):>7} {best:<14} {line['source']}")


def _list(service: Any, args: argparse.Namespace) -> int:
    if args.banks:
        for info in service.banks():
            print_json_line(info.to_dict())
        return 0
    for entry in service.store.iter_entries(args.bank, limit=args.limit):
        print_json_line(entry.to_dict())
    return 0


def _remove(service: Any, args: argparse.Namespace) -> int:
    from karung.serve.bank.errors import EntryNotFound

    failures = 0
    for entry_id in args.ids:
        try:
            entry = service.remove(entry_id)
        except EntryNotFound as exc:
            failures += 1
            print_json_line({"id": entry_id, "error": {"code": exc.code, "message": str(exc)}})
        else:
            print_json_line({"id": entry_id, "removed": True, "bank": entry.bank})
    return 2 if failures else 0


def _sellers(service: Any, args: argparse.Namespace) -> int:
    if args.seller:
        print_json_line(service.links_for_seller(args.seller).to_dict())
        return 0
    for cluster in service.seller_clusters():
        print_json_line(cluster.to_dict())
    return 0


def _export(service: Any, args: argparse.Namespace) -> int:
    if args.out == "-":
        count = service.export_csv(sys.stdout, args.bank, fmt=args.format)
    else:
        with open(args.out, "w", encoding="utf-8", newline="") as out:
            count = service.export_csv(out, args.bank, fmt=args.format)
    print(f"exported {count} entries to {args.out}", file=sys.stderr)
    return 0


def _import(service: Any, args: argparse.Namespace) -> int:
    try:
        if args.file == "-":
            report = service.import_csv(sys.stdin, args.bank, fmt=args.format)
        else:
            with open(args.file, encoding="utf-8", newline="") as source:
                report = service.import_csv(source, args.bank, fmt=args.format)
    except OSError as exc:
        return die(f"cannot read {args.file}: {exc}")
    for err in report.errors:
        print_json_line({"line": err.line, "error": {"code": err.code, "message": str(err)}})
    print_json_line(
        {"added": report.added, "existing": report.existing, "errors": len(report.errors)}
    )
    return 2 if report.errors else 0


def _rehash(service: Any, args: argparse.Namespace) -> int:
    """Re-hash every entry banked from one of the photos under ``paths`` (by sha256)."""
    from tqdm import tqdm

    paths = [str(p) for p in iter_image_paths(args.paths)]
    counts = {"files": len(paths), "matched_files": 0, "rehashed": 0, "errors": 0}
    with tqdm(total=len(paths), desc="rehash", unit="img", file=sys.stderr) as bar:
        for item in _images(paths):
            bar.update(1)
            if isinstance(item, dict):
                counts["errors"] += 1
                print_json_line(item)
                continue
            done = service.rehash(item[2], item[1], every=args.all)
            counts["matched_files"] += done > 0
            counts["rehashed"] += done
    versions = service.store.version_counts()
    print_json_line({**counts, "entries_by_hash_version": {str(k): v for k, v in versions.items()}})
    return 2 if counts["errors"] else 0


def _toggle(enabled: bool) -> Callable[[Any, argparse.Namespace], int]:
    def action(service: Any, args: argparse.Namespace) -> int:
        print_json_line(service.configure_bank(args.name, enabled=enabled).to_dict())
        return 0

    return action


def _configure(service: Any, args: argparse.Namespace) -> int:
    info = service.configure_bank(
        args.name,
        pdq_threshold=args.pdq,
        phash_threshold=args.phash,
        description=args.description,
        create=True,
    )
    print_json_line(info.to_dict())
    return 0


ACTIONS: dict[str, Callable[[Any, argparse.Namespace], int]] = {
    "add": _add,
    "match": _match,
    "list": _list,
    "remove": _remove,
    "sellers": _sellers,
    "export": _export,
    "import": _import,
    "enable": _toggle(True),
    "disable": _toggle(False),
    "configure": _configure,
    "rehash": _rehash,
}
