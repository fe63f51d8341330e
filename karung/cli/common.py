"""Helpers shared by CLI sub-commands (kept free of heavy imports)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Final, TypeVar

from karung.vision.backend_names import BACKENDS

T = TypeVar("T")

IMAGE_SUFFIXES: Final = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp"})


def iter_image_paths(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Yield files in argument order; directories are walked (sorted) for image files.

    A path given explicitly is always yielded, even with an odd suffix or when missing, so the
    caller reports it as an error instead of silently skipping it.
    """
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and child.suffix.lower() in IMAGE_SUFFIXES:
                    yield child
        else:
            yield path


def print_json_line(obj: dict[str, Any]) -> None:
    """Write one compact JSON object per line and flush (consumers stream the output)."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def error_line(source: str, code: str, message: str) -> dict[str, Any]:
    """The JSON shape of a per-item failure."""
    return {"source": source, "error": {"code": code, "message": message}}


def die(message: str, code: int = 1) -> int:
    """Print ``error: message`` to stderr and return the exit code."""
    print(f"error: {message}", file=sys.stderr)
    return code


def add_dirs(
    parser: argparse.ArgumentParser, flag: str, help_text: str, *, required: bool = False
) -> None:
    """A repeatable ``FLAG DIR`` option: image folders or manifests (``[]`` when not given)."""
    parser.add_argument(
        flag,
        action="append",
        required=required,
        default=None if required else [],
        metavar="DIR",
        help=help_text,
    )


def add_backend(
    parser: argparse.ArgumentParser, default: str | None, help_text: str | None = None
) -> None:
    """The ``--backend`` option: one of the inference backends a model loads on."""
    parser.add_argument("--backend", choices=list(BACKENDS), default=default, help=help_text)


def from_args(cls: type[T], args: argparse.Namespace, **values: Any) -> T:
    """An options dataclass filled from the parsed arguments of the same names; ``values``
    add the others and override those that need converting."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    picked = {k: v for k, v in vars(args).items() if k in names}
    return cls(**{**picked, **values})


def stack_bench(
    args: argparse.Namespace, engine: Callable[[Any, Any], T], show: Callable[[T], None]
) -> int:
    """Run a benchmark ``engine`` of the loopback stack (``karung.serve.bench``) on the parsed
    ``StackOptions`` and ``TrafficOptions`` and ``show`` its summary; exit 1 when the stack
    cannot be started."""
    from karung.serve.bench.harness import BenchError, StackOptions, TrafficOptions

    try:
        summary = engine(from_args(StackOptions, args), from_args(TrafficOptions, args))
    except BenchError as exc:
        return die(str(exc))
    show(summary)
    return 0


def add_reduce_range(parser: argparse.ArgumentParser, help_text: str) -> None:
    """The ``--reduce-range auto|yes|no`` option of ``karung export`` and ``karung qat``."""
    parser.add_argument(
        "--reduce-range", choices=["auto", "yes", "no"], default="auto", help=help_text
    )


def reduce_range(args: argparse.Namespace) -> bool | None:
    """``--reduce-range`` as the libraries take it (``None``: decide from the CPU)."""
    return {"auto": None, "yes": True, "no": False}[args.reduce_range]
