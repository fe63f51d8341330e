"""``karung bench decode``: time decoding a 12 MP JPEG to model size, draft mode vs full decode."""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the benchmark's arguments."""
    parser.add_argument("--width", type=int, default=4000)
    parser.add_argument("--height", type=int, default=3000)
    parser.add_argument("--target", type=int, default=224, help="model input size")
    parser.add_argument("--repeat", type=int, default=15)


def run(args: argparse.Namespace) -> int:
    """Print median/p95 milliseconds of both paths and their ratio."""
    from karung.vision.decode import decode_image

    data = _photo_like_jpeg(args.width, args.height)
    limits = {"max_bytes": 64 * 1024 * 1024, "max_pixels": 100_000_000}

    def fast() -> None:
        decode_image(data, target_size=args.target, **limits)

    def full() -> None:
        decode_image(data, **limits)

    print(f"{args.width}x{args.height} JPEG, {len(data) / 1e6:.1f} MB, target {args.target}px")
    base = _time(full, args.repeat)
    best = _time(fast, args.repeat)
    _row("full decode (baseline)", base, base)
    _row("draft + reduce (karung)", best, base)
    return 0


def _photo_like_jpeg(width: int, height: int) -> bytes:
    """Smooth gradients plus noise: compresses like a real photo, not like a flat fill."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([x / width * 255, y / height * 255, (np.sin(x / 50) + 1) * 127], axis=-1)
    noise = rng.normal(0, 12, size=base.shape)
    img = Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB")
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _time(fn: Callable[[], None], repeat: int) -> list[float]:
    fn()  # warm-up
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def _row(name: str, samples: list[float], base: list[float]) -> None:
    med, p95 = statistics.median(samples), sorted(samples)[int(0.95 * (len(samples) - 1))]
    ratio = statistics.median(base) / med
    print(f"  {name:<26} median {med:7.1f} ms  p95 {p95:7.1f} ms  speed-up x{ratio:5.1f}")
