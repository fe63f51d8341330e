"""Where one image's CPU goes between its bytes and the model (``karung bench intake``), and
the decode benchmark (``karung bench decode``).

The service spends most of its time here, per image: sha256, the JPEG decode towards hash size,
the perceptual hashes, the resize to the model's input and the normalisation. Each stage is timed
alone on the benchmark's 1600x1200 JPEGs, and the two stages karung replaced with faster paths
are timed against their reference in the same run:

* PDQ: pdqhash's binding (holds the GIL throughout) vs the native call (releases it), on one
  thread and on two threads, since the service's image threads share one interpreter;
* normalisation: per-pixel float arithmetic vs per-channel lookup tables.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from karung.serve.bench.harness import make_images

# Generous decode limits: the benchmark times the work, not the service's refusals.
LIMITS: Final = {"max_bytes": 64 * 1024 * 1024, "max_pixels": 100_000_000}


@dataclass(frozen=True)
class IntakeFigures:
    """Milliseconds per image of each stage and of the reference and karung paths."""

    images: int
    mean_kb: int
    hashed_size: str
    stages: list[tuple[str, float]]
    pdq: dict[str, float]  # binding_1, binding_2, native_1, native_2
    normalise: dict[str, float]  # arithmetic, tables


def run_intake_bench(
    images: int, width: int, height: int, input_size: int, repeat: int
) -> IntakeFigures:
    """Time every stage on ``images`` photo-like JPEGs (best of ``repeat`` passes)."""
    import numpy as np

    from karung.vision import hashing, pdq_native
    from karung.vision.preprocess import Preprocessing

    datas = photo_jpegs(images, width, height)
    decoded = [hashing.decode_for_hashing(d, **LIMITS) for d in datas]
    pixels = [np.ascontiguousarray(np.asarray(im)) for im in decoded]
    pre = Preprocessing(input_size=input_size)
    stages: list[tuple[str, Callable[[Any], object], Sequence[Any]]] = [
        ("sha256", lambda d: hashlib.sha256(d).digest(), datas),
        ("decode for hashing", lambda d: hashing.decode_for_hashing(d, **LIMITS), datas),
        ("all hashes (PDQ x8, pHash, border)", hashing.compute_hashes, decoded),
        ("resize to model input", lambda im: pre.to_pixels([im]), decoded),
    ]
    return IntakeFigures(
        images=len(datas),
        mean_kb=round(sum(len(d) for d in datas) / len(datas) / 1024),
        hashed_size=f"{decoded[0].width}x{decoded[0].height}",
        stages=[(name, per_image(fn, items, repeat)) for name, fn, items in stages],
        pdq=_compare_pdq(pixels, repeat, pdq_native.load()),
        normalise=_compare_normalise(pre, pre.to_pixels(decoded), repeat),
    )


def _compare_pdq(
    pixels: Sequence[Any], repeat: int, native: Callable[[Any], object]
) -> dict[str, float]:
    import pdqhash

    return {
        "binding_1": per_image(pdqhash.compute_dihedral, pixels, repeat),
        "binding_2": per_image(pdqhash.compute_dihedral, pixels, repeat, threads=2),
        "native_1": per_image(native, pixels, repeat),
        "native_2": per_image(native, pixels, repeat, threads=2),
    }


def _compare_normalise(pre: Any, resized: Any, repeat: int) -> dict[str, float]:
    import numpy as np

    mean = np.asarray(pre.mean, dtype=np.float32) * 255.0
    inv_std = 1.0 / (np.asarray(pre.std, dtype=np.float32) * 255.0)

    def arithmetic(batch: Any) -> Any:
        out = (batch.astype(np.float32) - mean) * inv_std
        return np.ascontiguousarray(out.transpose(0, 3, 1, 2))

    batches = [resized[i : i + 16] for i in range(0, len(resized), 16)]
    per = len(resized) / len(batches)
    return {
        "arithmetic": per_image(arithmetic, batches, repeat) / per,
        "tables": per_image(pre.normalize, batches, repeat) / per,
    }


def per_image(
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


def photo_jpegs(count: int, width: int, height: int) -> list[bytes]:
    """The benchmark's photo-like JPEGs (the ones ``karung bench serve`` serves)."""
    with tempfile.TemporaryDirectory(prefix="karung-bench-intake-") as tmp:
        folder = Path(tmp) / "images"
        names = make_images(folder, count, width, height)
        return [(folder / name).read_bytes() for name in names]


def run_decode_bench(
    width: int, height: int, target: int, repeat: int
) -> tuple[int, list[float], list[float]]:
    """The JPEG's size and the milliseconds of each decode of a ``width`` x ``height`` photo,
    full decode (the baseline) and draft + reduce to ``target`` px (karung's)."""
    from karung.vision.decode import decode_image

    data = _gradient_jpeg(width, height)

    def full() -> None:
        decode_image(data, **LIMITS)

    def fast() -> None:
        decode_image(data, target_size=target, **LIMITS)

    return len(data), _samples(full, repeat), _samples(fast, repeat)


def _gradient_jpeg(width: int, height: int) -> bytes:
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


def _samples(fn: Callable[[], None], repeat: int) -> list[float]:
    fn()  # warm-up
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples
