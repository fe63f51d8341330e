"""Entry point of the ``karung`` console script.

Each sub-command lives in its own module exposing ``configure(parser)`` and ``run(args) -> int``.
Only the module of the command being run is imported, so ``karung score`` never pays for (or
imports) the training stack, and ``karung --help`` imports nothing heavy at all.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Final, Protocol

from karung import __version__
from karung.errors import KarungError

# command -> (module, one-line help). Order is the order shown in --help.
COMMANDS: Final[dict[str, tuple[str, str]]] = {
    "score": ("karung.cli.score", "score image files with the detector"),
    "info": ("karung.cli.info", "show versions, the model path and its labels"),
    "synth": ("karung.cli.synth", "synthesise a labelled training set"),
    "train": ("karung.cli.train", "fine-tune the detector"),
    "evaluate": ("karung.cli.evaluate", "evaluate a checkpoint and write a report"),
    "qat": ("karung.cli.qat", "fine-tune a checkpoint so its int8 export agrees with it"),
    "export": ("karung.cli.export", "export a checkpoint to ONNX (optionally int8)"),
    "bank": ("karung.cli.bank", "manage the perceptual-hash bank of known-bad photos"),
    "bench": ("karung.cli.bench", "benchmarks (hash robustness, inference speed)"),
    "backfill": ("karung.cli.backfill", "score and hash a whole catalogue on Ray Data"),
    "serve": ("karung.cli.serve", "run the scoring service"),
    "keys": ("karung.cli.keys", "manage API keys of the scoring service"),
    "review": ("karung.cli.review", "moderator queue tools (accounts, dataset export)"),
    "retrain": ("karung.cli.retrain", "retrain on moderators' labels, gate, promote"),
    "models": ("karung.cli.models", "model history, lineage and rollback"),
    "drift": ("karung.cli.drift", "has this week's risk distribution moved?"),
}


class CommandModule(Protocol):
    """What every sub-command module provides."""

    def configure(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def _top_parser() -> argparse.ArgumentParser:
    epilog = "commands:\n" + "\n".join(f"  {n:<10} {h}" for n, (_, h) in COMMANDS.items())
    parser = argparse.ArgumentParser(
        prog="karung",
        description="Detect and block listings of imported used-clothing bales.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"karung {__version__}")
    parser.add_argument("command", choices=list(COMMANDS), metavar="COMMAND")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, import the chosen sub-command's module and run it."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    top = _top_parser()
    if not args_list or args_list[0].startswith("-"):
        top.parse_args(args_list or ["--help"])
        return 2
    name = args_list[0]
    if name not in COMMANDS:
        top.parse_args(args_list[:1])  # prints the usage error and exits 2
    module_name, help_text = COMMANDS[name]
    module: CommandModule = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"karung {name}", description=help_text)
    module.configure(parser)
    args = parser.parse_args(args_list[1:])
    try:
        return int(module.run(args))
    except KarungError as exc:  # every room's typed errors, reported the same way
        print(f"error: {exc.code}: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
