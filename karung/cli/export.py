"""``karung export --model CKPT --format onnx [--int8 --calibration DIR]``.

Writes ``model.fp32.onnx`` (and ``model.int8.onnx`` with ``--int8``) next to the checkpoint,
each only if its decisions agree with torch fp32 on >= 99.5% of validation images, plus
``parity.json``. The int8 file re-checks its close calls (risks near a threshold) on the fp32
file, in a band fitted on tuning images disjoint from the calibration and parity sets
(``--no-fallback``: pure int8). ``--int8-search`` also keeps the nodes whose quantisation
hurts most in fp32 until the tuning images clear the gate (slow: minutes per model).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from karung.cli.common import add_dirs, add_reduce_range

if TYPE_CHECKING:
    from karung.training.fallback_fit import BandFit
    from karung.training.quant_search import SearchResult


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``karung export``."""
    parser.add_argument("--model", required=True, help="checkpoint file or model dir")
    parser.add_argument("--format", choices=["onnx"], default="onnx")
    parser.add_argument("--int8", action="store_true", help="static int8 quantisation")
    add_dirs(
        parser,
        "--calibration",
        "calibration images (ImageFolder or manifest); default: the checkpoint's val split",
    )
    add_dirs(
        parser, "--parity-data", "images for the parity check; default: the checkpoint's val split"
    )
    parser.add_argument("--out", help="output dir (default: the checkpoint's directory)")
    parser.add_argument("--calibration-images", type=int, default=256)
    parser.add_argument("--parity-images", type=int, default=1000)
    _add_quantisation(parser)
    _add_gate(parser)
    parser.add_argument("--workers", type=int, default=2, help="decode workers")


def _add_quantisation(parser: argparse.ArgumentParser) -> None:
    """How the int8 file is quantised."""
    parser.add_argument("--quant-format", choices=["qdq", "qoperator"], default="qdq")
    parser.add_argument("--no-per-channel", action="store_true", help="per-tensor weights")
    add_reduce_range(
        parser, "7-bit weights (auto: yes on CPUs without VNNI, where u8s8 sums saturate)"
    )
    parser.add_argument(
        "--calibrate-method", choices=["minmax", "entropy", "percentile"], default="minmax"
    )


def _add_gate(parser: argparse.ArgumentParser) -> None:
    """The parity gate, the int8 fallback band and the mixed-precision search."""
    from karung.training.fallback_fit import FallbackOptions  # light: no torch

    parser.add_argument(
        "--min-agreement",
        type=float,
        default=0.995,
        help="decision agreement with torch fp32 required to install a file (default 0.995)",
    )
    parser.add_argument(
        "--fallback",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="re-run int8 close calls (risk in a band around the thresholds) on the fp32 file "
        "(default on)",
    )
    parser.add_argument(
        "--fallback-safety",
        type=float,
        default=FallbackOptions.safety,
        help="band margin = this x the widest margin the tuning images needed "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--int8-search",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="when full int8 misses the gate on tuning images, keep the most sensitive nodes "
        "in fp32 (mixed precision; default off)",
    )
    parser.add_argument(
        "--tuning-images",
        type=int,
        default=1000,
        help="validation images for the fallback band and the int8 search, disjoint from "
        "calibration and parity",
    )


def run(args: argparse.Namespace) -> int:
    """Export, check parity, print the report; exit 3 when parity fails, 1 on other errors."""
    from karung.training.runtime import prefer_passive_threads

    prefer_passive_threads()  # before torch is imported
    from pathlib import Path

    from karung.cli.common import die, from_args, reduce_range
    from karung.training.errors import ParityError
    from karung.training.export import QuantOptions
    from karung.training.export_job import ExportJob, run_export
    from karung.training.fallback_fit import FallbackOptions
    from karung.vision.modeldir import ModelDir

    try:
        ckpt_path = ModelDir.find(args.model).checkpoint
        job = from_args(
            ExportJob,
            args,
            checkpoint=ckpt_path,
            out_dir=Path(args.out) if args.out else ckpt_path.parent,
            calibration=tuple(args.calibration),
            parity_data=tuple(args.parity_data),
            options=QuantOptions(
                quant_format=args.quant_format,
                per_channel=not args.no_per_channel,
                reduce_range=reduce_range(args),
                method=args.calibrate_method,
            ),
            search=args.int8_search,
            fallback_options=FallbackOptions(safety=args.fallback_safety),
        )
        result = run_export(job)
    except ParityError as exc:  # other KarungErrors: reported by karung.cli.main
        return die(f"{exc.code}: {exc}; failing files were NOT installed (see parity.json)", 3)
    if result.search is not None:
        print(search_summary(result.search))
    if result.unguarded is not None:
        print(f"int8 without fallback: {result.unguarded.summary()}")
    if result.fallback is not None:
        print(fallback_summary(result.fallback))
    for kind, report in result.reports.items():
        print(f"{kind}: {report.summary()}")
        print(f"wrote {result.files[kind]}")
    return 0


def fallback_summary(fit: BandFit) -> str:
    """One line on the fitted fallback band."""
    return (
        f"int8 fallback: risks in [{fit.band.low:.4f}, {fit.band.high:.4f}] re-run on fp32 "
        f"(margin {fit.margin:.2f} log-odds, tuning needed {fit.needed_margin:.2f}); on "
        f"{fit.n_tuning} tuning images agreement {fit.int8_agreement:.2%} -> "
        f"{fit.guarded_agreement:.2%}, {fit.rechecked_share:.1%} re-checked"
    )


def search_summary(result: SearchResult) -> str:
    """One line on the int8 search: tuning agreement before/after and the fp32 nodes."""
    nodes = ", ".join(result.excluded) or "none"
    return (
        f"int8 search on {result.n_tuning} tuning images: decision agreement "
        f"{result.full_int8.decision_agreement:.2%} -> {result.mixed.decision_agreement:.2%} "
        f"(target {result.target:.2%}); fp32 nodes: {nodes}"
    )
