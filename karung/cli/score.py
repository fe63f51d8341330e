"""``karung score PATH...``: score image files; one JSON object per image per line."""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from karung.cli.common import add_backend, die, error_line, iter_image_paths, print_json_line


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``karung score``."""
    parser.add_argument("paths", nargs="+", help="image files or directories (walked)")
    parser.add_argument("--model", help="checkpoint file or model dir (default: shipped model)")
    parser.add_argument("--format", choices=["jsonl", "table"], default="jsonl")
    add_backend(
        parser,
        "auto",
        "auto: the fastest parity-checked ONNX export on this CPU (timed), else torch; "
        "onnx: the int8 export with its fp32 fallback, else fp32",
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-bytes", type=int, default=20 * 1024 * 1024)
    parser.add_argument("--max-pixels", type=int, default=50_000_000)


@dataclass
class _Decoded:
    source: str
    sha256: str
    image: Any


def run(args: argparse.Namespace) -> int:
    """Score every image; exit 0 when all scored, 2 when any failed, 1 on a setup error."""
    from karung.vision.classifier import Classifier
    from karung.vision.errors import KarungVisionError
    from karung.vision.modeldir import default_model_dir

    try:
        clf = Classifier.from_path(args.model or default_model_dir(), backend=args.backend)
    except KarungVisionError as exc:
        return die(f"{exc} (pass --model CKPT)")
    printer = _TablePrinter() if args.format == "table" else None
    failures = 0
    for batch, errors in _batches(args, clf.preprocessing.input_size):
        for err in errors:
            failures += 1
            _emit(err, printer)
        if batch:
            for item, result in zip(batch, clf.score([d.image for d in batch]), strict=True):
                _emit(_ok_line(item, result, clf.model_version), printer)
    return 2 if failures else 0


def _ok_line(item: _Decoded, result: Any, model_version: str) -> dict[str, Any]:
    return {
        "source": item.source,
        "sha256": item.sha256,
        "scores": {k: round(v, 6) for k, v in result.scores.items()},
        "risk": round(result.risk, 6),
        "label": result.label,
        "decision": str(result.decision),
        "model_version": model_version,
    }


def _batches(
    args: argparse.Namespace, target: int
) -> Iterator[tuple[list[_Decoded], list[dict[str, Any]]]]:
    """Decode files lazily in groups of ``batch_size``; failures travel beside the batch."""
    from karung.vision.decode import decode_image
    from karung.vision.errors import ImageDecodeError

    batch: list[_Decoded] = []
    errors: list[dict[str, Any]] = []
    for path in iter_image_paths(args.paths):
        source = str(path)
        try:
            data = _read(path)
            image = decode_image(
                data, max_bytes=args.max_bytes, max_pixels=args.max_pixels, target_size=target
            )
        except ImageDecodeError as exc:
            errors.append(error_line(source, exc.code, str(exc)))
        except OSError as exc:
            errors.append(error_line(source, "file_unreadable", str(exc)))
        else:
            batch.append(_Decoded(source, hashlib.sha256(data).hexdigest(), image))
        if len(batch) + len(errors) >= args.batch_size:
            yield batch, errors
            batch, errors = [], []
    if batch or errors:
        yield batch, errors


def _read(path: Path) -> bytes:
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    return path.read_bytes()


def _emit(line: dict[str, Any], printer: _TablePrinter | None) -> None:
    if printer is None:
        print_json_line(line)
    else:
        printer.row(line)


class _TablePrinter:
    """Fixed-width human-readable rows."""

    def __init__(self) -> None:
        print(f"{'decision':<8} {'risk':>6} {'label':<8} source")

    def row(self, line: dict[str, Any]) -> None:
        if "error" in line:
            print(f"{'ERROR':<8} {'':>6} {line['error']['code']:<8} {line['source']}")
            return
        print(f"{line['decision']:<8} {line['risk']:>6.3f} {line['label']:<8} {line['source']}")
