"""``karung export --model CKPT --format onnx [--int8 --calibration DIR]``."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``karung export``."""
    parser.add_argument("--model", required=True, help="checkpoint file or model dir")
    parser.add_argument("--format", choices=["onnx"], default="onnx")
    parser.add_argument("--int8", action="store_true", help="static int8 quantisation")
    parser.add_argument(
        "--calibration",
        action="append",
        default=[],
        metavar="DIR",
        help="calibration images (ImageFolder or manifest); default: the checkpoint's val split",
    )
    parser.add_argument(
        "--parity-data",
        action="append",
        default=[],
        metavar="DIR",
        help="images for the parity check; default: the checkpoint's val split",
    )
    parser.add_argument("--out", help="output dir (default: the checkpoint's directory)")
    parser.add_argument("--calibration-images", type=int, default=256)
    parser.add_argument("--parity-images", type=int, default=1000)
    parser.add_argument("--quant-format", choices=["qdq", "qoperator"], default="qdq")
    parser.add_argument("--no-per-channel", action="store_true", help="per-tensor weights")
    parser.add_argument("--reduce-range", action="store_true", help="7-bit weights")
    parser.add_argument(
        "--calibrate-method", choices=["minmax", "entropy", "percentile"], default="minmax"
    )
    parser.add_argument("--keep-fp32", action="store_true", help="also keep model.fp32.onnx")
    parser.add_argument("--workers", type=int, default=2, help="decode workers")


def run(args: argparse.Namespace) -> int:
    """Export, check parity, print the report; exit 3 when parity fails, 1 on other errors."""
    from pathlib import Path

    from karung.cli.common import die
    from karung.training.errors import KarungTrainingError, ParityError
    from karung.training.export import QuantOptions
    from karung.training.export_job import ExportJob, run_export
    from karung.vision.checkpoint import resolve_checkpoint_path
    from karung.vision.errors import KarungVisionError

    try:
        ckpt_path = resolve_checkpoint_path(args.model)
        job = ExportJob(
            checkpoint=ckpt_path,
            out_dir=Path(args.out) if args.out else ckpt_path.parent,
            int8=args.int8,
            calibration=tuple(args.calibration),
            parity_data=tuple(args.parity_data),
            calibration_images=args.calibration_images,
            parity_images=args.parity_images,
            keep_fp32=args.keep_fp32,
            options=QuantOptions(
                quant_format=args.quant_format,
                per_channel=not args.no_per_channel,
                reduce_range=args.reduce_range,
                method=args.calibrate_method,
            ),
            workers=args.workers,
        )
        path, report = run_export(job)
    except ParityError as exc:
        return die(f"{exc.code}: {exc}; the int8 model was NOT installed", code=3)
    except (KarungTrainingError, KarungVisionError) as exc:
        return die(f"{exc.code}: {exc}")
    print(report.summary())
    print(f"wrote {path}")
    return 0
