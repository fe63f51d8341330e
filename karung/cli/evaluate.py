"""``karung evaluate --model CKPT --data DIR --out REPORT_DIR [--compare OTHER_CKPT]``."""

from __future__ import annotations

import argparse

from karung.cli.common import add_backend, add_dirs


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``karung evaluate``."""
    parser.add_argument("--model", help="checkpoint file or model dir (default: shipped model)")
    add_dirs(
        parser,
        "--data",
        "ImageFolder, folder with manifest.csv, or a manifest .csv file; repeatable",
        required=True,
    )
    parser.add_argument("--out", required=True, metavar="REPORT_DIR")
    parser.add_argument("--compare", metavar="OTHER_CKPT", help="second model, side by side")
    parser.add_argument(
        "--split",
        choices=["all", "train", "val", "test"],
        default="all",
        help="rows to evaluate (use val for a training data set; all for a held-out set)",
    )
    add_backend(
        parser,
        "torch",
        "onnx-fp32: model.fp32.onnx (same numbers as torch, several times faster); "
        "onnx: the int8 file with its fallback; auto: the fastest parity-checked export here",
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2, help="decode workers")
    parser.add_argument("--limit", type=int, default=0, help="evaluate at most N images (0: all)")
    parser.add_argument(
        "--proxies",
        action="store_true",
        help="also report the real-photo proxies: real negatives flagged (rows without a "
        "synthetic variant), the synthetic-vs-real domain gap and leave-one-variant-out AUC "
        "(these two on cached frozen features of every split of --data)",
    )
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    """Evaluate, write ``metrics.json`` and ``report.md`` with plots; exit 1 on bad input."""
    from karung.training.runtime import prefer_passive_threads

    prefer_passive_threads()  # before torch is imported
    from karung.cli.common import from_args
    from karung.training.evaluate_job import EvaluateJob, run_evaluation
    from karung.vision.modeldir import default_model_dir

    models = (str(args.model or default_model_dir()),) + ((args.compare,) if args.compare else ())
    job = from_args(
        EvaluateJob, args, models=models, data=tuple(args.data), progress=not args.no_progress
    )
    report, summary = run_evaluation(job)  # errors: karung.cli.main reports their code
    print(summary)
    print(f"report: {report}")
    return 0
