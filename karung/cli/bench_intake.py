"""``karung bench intake``: where one image's CPU goes between its bytes and the model.

The service spends most of its time here, per image: sha256, the JPEG decode towards hash size,
the perceptual hashes, the resize to the model's input and the normalisation. Each stage is timed
alone on the benchmark's 1600x1200 JPEGs, and the two stages karung replaced with faster paths
are timed against their reference in the same run:

* PDQ: pdqhash's binding (holds the GIL throughout) vs the native call (releases it), on one
  thread and on two threads, since the service's image threads share one interpreter;
* normalisation: per-pixel float arithmetic vs per-channel lookup tables.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the benchmark's arguments."""
    parser.add_argument("--images", type=int, default=32, help="distinct JPEGs")
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--height", type=int, default=1200)
    parser.add_argument("--input-size", type=int, default=160, help="model input size")
    parser.add_argument("--repeat", type=int, default=3, help="passes over the images")


def run(args: argparse.Namespace) -> int:
    """Print milliseconds per image of every stage and the ratios of the faster paths."""
    import numpy as np

    from karung.vision import hashing, pdq_native
    from karung.vision.preprocess import Preprocessing

    datas = _jpegs(args)
    limits = {"max_bytes": 64 * 1024 * 1024, "max_pixels": 100_000_000}
    images = [hashing.decode_for_hashing(d, **limits) for d in datas]
    pixels = [np.ascontiguousarray(np.asarray(im)) for im in images]
    pre = Preprocessing(input_size=args.input_size)
    resized = pre.to_pixels(images)
    size = f"{images[0].width}x{images[0].height}"
    print(f"{len(datas)} JPEGs {args.width}x{args.height}, {_mean_kb(datas)} KB on average; "
          f"hashed at {size}, model input {args.input_size}px")  # fmt: skip
    stages: list[tuple[str, Callable[[Any], object], Sequence[Any]]] = [
        ("sha256", lambda d: hashlib.sha256(d).digest(), datas),
        ("decode for hashing", lambda d: hashing.decode_for_hashing(d, **limits), datas),
        ("all hashes (PDQ x8, pHash, border)", hashing.compute_hashes, images),
        ("resize to model input", lambda im: pre.to_pixels([im]), images),
    ]
    rows = [(name, _per_image(fn, items, args.repeat)) for name, fn, items in stages]
    for name, ms in rows:
        print(f"  {name:<36} {ms:6.2f} ms/image")
    _compare_pdq(pixels, args.repeat, pdq_native)
    _compare_normalise(pre, resized, args.repeat)
    return 0


def _compare_pdq(pixels: Sequence[Any], repeat: int, pdq_native: Any) -> None:
    import pdqhash

    native = pdq_native.load()
    print("PDQ, 8 dihedral hashes")
    base = _per_image(pdqhash.compute_dihedral, pixels, repeat)
    base2 = _per_image(pdqhash.compute_dihedral, pixels, repeat, threads=2)
    fast = _per_image(native, pixels, repeat)
    fast2 = _per_image(native, pixels, repeat, threads=2)
    print(f"  {'binding (baseline), 1 thread':<36} {base:6.2f} ms/image")
    print(f"  {'binding, 2 threads':<36} {base2:6.2f} ms/image  x{base / base2:4.2f}")
    print(f"  {'native (karung), 1 thread':<36} {fast:6.2f} ms/image  x{base / fast:4.2f}")
    print(f"  {'native, 2 threads':<36} {fast2:6.2f} ms/image  x{base / fast2:4.2f}")


def _compare_normalise(pre: Any, resized: Any, repeat: int) -> None:
    import numpy as np

    mean = np.asarray(pre.mean, dtype=np.float32) * 255.0
    inv_std = 1.0 / (np.asarray(pre.std, dtype=np.float32) * 255.0)

    def arithmetic(batch: Any) -> Any:
        out = (batch.astype(np.float32) - mean) * inv_std
        return np.ascontiguousarray(out.transpose(0, 3, 1, 2))

    batches = [resized[i : i + 16] for i in range(0, len(resized), 16)]
    per = len(resized) / len(batches)
    base = _per_image(arithmetic, batches, repeat) / per
    fast = _per_image(pre.normalize, batches, repeat) / per
    print("normalisation, batches of 16")
    print(f"  {'float arithmetic (baseline)':<36} {base:6.3f} ms/image")
    print(f"  {'lookup tables (karung)':<36} {fast:6.3f} ms/image  x{base / fast:4.2f}")


def _per_image(
    fn: Callable[[Any], object], items: Sequence[Any], repeat: int, threads: int = 1
) -> float:
    """Wall milliseconds per item of ``fn`` over ``items`` (``repeat`` passes, best pass)."""
    fn(items[0])  # warm-up
    best = float("inf")
    with ThreadPoolExecutor(threads) as pool:
        for _ in range(repeat):
            start = time.perf_counter()
            if threads == 1:
                for item in items:
                    fn(item)
            else:
                list(pool.map(fn, items))
            best = min(best, time.perf_counter() - start)
    return best * 1000 / len(items)


def _jpegs(args: argparse.Namespace) -> list[bytes]:
    """The benchmark's photo-like JPEGs (the ones ``karung bench serve`` serves)."""
    import tempfile
    from pathlib import Path

    from karung.cli.bench_serve import make_images

    with tempfile.TemporaryDirectory(prefix="karung-bench-intake-") as tmp:
        folder = Path(tmp) / "images"
        names = make_images(folder, args.images, args.width, args.height)
        return [(folder / name).read_bytes() for name in names]


def _mean_kb(datas: Sequence[bytes]) -> int:
    return round(sum(len(d) for d in datas) / len(datas) / 1024)
