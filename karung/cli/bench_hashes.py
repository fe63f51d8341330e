"""``karung bench hashes``: how well the bank catches edited re-uploads, and what it falsely hits.

The engine is :mod:`karung.serve.bench.hashes` (the edits: :mod:`karung.serve.bank.
transforms`); this module parses the arguments, writes the JSON report and prints the table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``karung bench hashes``."""
    parser.add_argument("--images", required=True, help="directory of original photos")
    parser.add_argument("--distractors", required=True, help="directory of unrelated photos")
    parser.add_argument("--n", type=int, default=300, help="originals to bank and edit")
    parser.add_argument("--distractor-n", type=int, default=2000, help="distractors to query")
    parser.add_argument("--split-by-sender", help="CSV with image,sender_id (see module docs)")
    parser.add_argument("--transforms", help="comma-separated subset of transforms")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="hash_bench.json", help="JSON results file")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark; exit 0 when every target is met, 3 when one is missed."""
    from karung.serve.bench.hashes import pick_images, run_benchmark
    from karung.serve.bench.transforms import FALSE_MATCH_TARGET, TRANSFORMS

    originals, distractors = pick_images(
        args.images,
        args.distractors,
        n=args.n,
        distractor_n=args.distractor_n,
        seed=args.seed,
        split=args.split_by_sender,
    )
    names = args.transforms.split(",") if args.transforms else list(TRANSFORMS)
    unknown = [n for n in names if n not in TRANSFORMS]
    if unknown or not originals or not distractors:
        from karung.cli.common import die

        return die(f"unknown transforms {unknown}" if unknown else "no images found")
    report = run_benchmark(originals, distractors, names, args.seed)
    Path(args.out).write_text(json.dumps(report, indent=2), encoding="utf-8")
    print_report(report)
    print(f"results written to {args.out}", file=sys.stderr)
    met = all(r["meets_target"] is not False for r in report["transforms"])
    return 0 if met and report["false_matches"]["combined_rate"] < FALSE_MATCH_TARGET else 3


def print_report(report: dict[str, Any]) -> None:
    """The results as a fixed-width table."""
    from karung.serve.bench.transforms import FALSE_MATCH_TARGET

    print(f"originals: {report['originals']}   distractors: {report['distractors']}")
    if "index" in report:
        index = report["index"]
        print(f"index: {index['index_hashes']} hashes, {index['index_bytes'] / 2**20:.1f} MiB")
    print(f"{'transform':<20} {'PDQ':>6} {'pHash':>6} {'combined':>9} {'target':>7}  ok")
    for r in report["transforms"]:
        target = f"{r['target']:.2f}" if r["target"] is not None else "-"
        ok = {True: "yes", False: "NO", None: ""}[r["meets_target"]]
        recall = f"{r['pdq']:>6.3f} {r['phash']:>6.3f} {r['combined']:>9.3f}"
        print(f"{r['transform']:<20} {recall} {target:>7}  {ok}")
    f = report["false_matches"]
    rates = f"{f['pdq_rate']:>6.4f} {f['phash_rate']:>6.4f} {f['combined_rate']:>9.4f}"
    ok = "yes" if f["combined_rate"] < FALSE_MATCH_TARGET else "NO"
    print(f"{'false matches':<20} {rates} {FALSE_MATCH_TARGET:>7}  {ok}")
