"""``karung bench intake``: where one image's CPU goes between its bytes and the model.

Each stage (sha256, the decode towards hash size, the perceptual hashes, the resize to the
model's input) is timed alone on the benchmark's 1600x1200 JPEGs, and the two stages karung
replaced with faster paths (native PDQ, table normalisation) against their reference in the same
run. The engine is :mod:`karung.serve.bench.intake`; this module parses and prints.
"""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the benchmark's arguments."""
    parser.add_argument("--images", type=int, default=32, help="distinct JPEGs")
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--height", type=int, default=1200)
    parser.add_argument("--input-size", type=int, default=160, help="model input size")
    parser.add_argument("--repeat", type=int, default=3, help="passes over the images")


def run(args: argparse.Namespace) -> int:
    """Print milliseconds per image of every stage and the ratios of the faster paths."""
    from karung.serve.bench.intake import run_intake_bench

    f = run_intake_bench(args.images, args.width, args.height, args.input_size, args.repeat)
    print(f"{f.images} JPEGs {args.width}x{args.height}, {f.mean_kb} KB on average; "
          f"hashed at {f.hashed_size}, model input {args.input_size}px")  # fmt: skip
    for name, ms in f.stages:
        print(f"  {name:<36} {ms:6.2f} ms/image")
    base, pdq = f.pdq["binding_1"], f.pdq
    print("PDQ, 8 dihedral hashes")
    print(f"  {'binding (baseline), 1 thread':<36} {base:6.2f} ms/image")
    for label, key in (
        ("binding, 2 threads", "binding_2"),
        ("native (karung), 1 thread", "native_1"),
        ("native, 2 threads", "native_2"),
    ):
        print(f"  {label:<36} {pdq[key]:6.2f} ms/image  x{base / pdq[key]:4.2f}")
    slow, fast = f.normalise["arithmetic"], f.normalise["tables"]
    print("normalisation, batches of 16")
    print(f"  {'float arithmetic (baseline)':<36} {slow:6.3f} ms/image")
    print(f"  {'lookup tables (karung)':<36} {fast:6.3f} ms/image  x{slow / fast:4.2f}")
    return 0
