"""Pooled ImageNet features of the frozen backbone, cached per image content.

The default recipe (``karung train``) keeps MobileNetV2's ImageNet backbone frozen and trains only
a linear head on its pooled 1280-d features. Those features depend on nothing but the image bytes,
the backbone weights and the preprocessing, so they are computed once and cached under a key made
of the SHA-256 of the file's bytes and a *backbone key* (weights digest, input size, resize mode,
interpolation, normalisation, decoder version). A retrain on the same images with another head,
more reviewed photos or other regularisation then reads the cache and takes seconds.

Features are computed exactly as serving computes the model input (``decode_image`` with the
input size as draft target, :meth:`Preprocessing.to_array`), and the frozen blocks plus the
global pooling run in ONNX Runtime (see :mod:`karung.training.frozen`).

The cache is a directory per backbone key holding append-only ``.npz`` shards (``keys``: the hex
digests, ``feats``: float32 ``(n, 1280)``); shards are written atomically, so a killed extraction
loses at most the batch in flight and two runs can share a cache folder.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
from tqdm import tqdm

from karung.training.errors import KarungTrainingError
from karung.vision.decode import decode_image
from karung.vision.errors import ImageDecodeError
from karung.vision.model import ARCH, FEATURE_DIM
from karung.vision.preprocess import Preprocessing
from karung.vision.pretrained import WEIGHTS_SHA256

# Bump when decoding or pooling changes in a way that alters features for the same bytes.
FEATURE_SCHEMA: Final = 1
MAX_BYTES: Final = 20 * 1024 * 1024
MAX_PIXELS: Final = 50_000_000
ENV_CACHE: Final = "KARUNG_FEATURE_CACHE"
SHARD_ROWS: Final = 4096


class FeatureCacheError(KarungTrainingError, code="feature_cache_error"):
    """The feature cache folder cannot be read or written."""


def backbone_key(prep: Preprocessing) -> str:
    """The cache namespace of one backbone + preprocessing (features of other keys never mix)."""
    norm = hashlib.sha256(repr((prep.mean, prep.std)).encode()).hexdigest()[:8]
    return (
        f"{ARCH}-imagenet-{WEIGHTS_SHA256[:8]}-{prep.input_size}px-{prep.resize}-"
        f"{prep.interpolation}-n{norm}-v{FEATURE_SCHEMA}"
    )


def default_cache_dir() -> Path:
    """``$KARUNG_FEATURE_CACHE`` or the per-user cache folder."""
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("karung")) / "features"


def content_key(data: bytes) -> str:
    """The cache key of one encoded image: SHA-256 of its bytes."""
    return hashlib.sha256(data).hexdigest()


class FeatureCache:
    """Append-only store of ``content key -> float32 feature vector`` for one backbone key."""

    def __init__(self, root: Path, key: str) -> None:
        self.folder = Path(root) / key
        self._index: dict[str, np.ndarray] = {}
        self._loaded = False

    def _load(self) -> None:
        if self._loaded:
            return
        if self.folder.is_dir():
            for shard in sorted(self.folder.glob("*.npz")):
                try:
                    with np.load(shard) as z:
                        keys, feats = z["keys"], z["feats"]
                except (OSError, ValueError, KeyError) as exc:
                    raise FeatureCacheError(f"unreadable cache shard {shard}: {exc}") from exc
                for k, f in zip(keys.tolist(), feats, strict=True):
                    self._index[str(k)] = f
        self._loaded = True

    def __len__(self) -> int:
        self._load()
        return len(self._index)

    def get(self, key: str) -> np.ndarray | None:
        """The cached vector of ``key``, or None when it was never computed."""
        self._load()
        return self._index.get(key)

    def put(self, keys: Sequence[str], feats: np.ndarray) -> None:
        """Add vectors and persist them as one new shard (written atomically)."""
        if len(keys) != feats.shape[0]:
            raise FeatureCacheError(f"{len(keys)} keys for {feats.shape[0]} vectors")
        if not keys:
            return
        self._load()
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{uuid.uuid4().hex}.npz"
        tmp = self.folder / f".{name}.tmp"
        with tmp.open("wb") as fh:
            np.savez(fh, keys=np.asarray(keys), feats=np.asarray(feats, dtype=np.float32))
        tmp.replace(self.folder / name)
        for k, f in zip(keys, feats, strict=True):
            self._index[k] = np.asarray(f, dtype=np.float32)


@dataclass(frozen=True)
class Features:
    """Feature rows for a list of files; ``ok[i]`` is False for a file that could not be read."""

    x: np.ndarray
    ok: np.ndarray
    keys: tuple[str, ...]
    computed: int
    cached: int
    seconds: float


class BackboneEncoder:
    """The frozen ImageNet MobileNetV2 up to global pooling, in ONNX Runtime."""

    def __init__(self, prep: Preprocessing, threads: int) -> None:
        from karung.training.frozen import NUM_BLOCKS, FrozenPrefix
        from karung.vision.model import build_model

        self.prep = prep
        model = build_model(2, pretrained=True).eval()
        self._prefix = FrozenPrefix(model, NUM_BLOCKS, prep.input_size, threads)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """``(N, 3, S, S)`` normalised input -> ``(N, 1280)`` pooled features."""
        import torch

        out = self._prefix(torch.from_numpy(batch)).numpy()
        if out.shape[1] != FEATURE_DIM:
            raise KarungTrainingError(f"backbone returned {out.shape}, expected {FEATURE_DIM}-d")
        return np.asarray(out, dtype=np.float32)


def _read(path: str) -> bytes | None:
    try:
        return Path(path).read_bytes()
    except OSError:
        return None


def _pixels(data: bytes, prep: Preprocessing) -> np.ndarray | None:
    try:
        img = decode_image(
            data, max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS, target_size=prep.input_size
        )
    except ImageDecodeError:
        return None
    return prep.to_pixels([img])[0]


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def extract(
    paths: Sequence[str],
    cache: FeatureCache,
    prep: Preprocessing,
    *,
    threads: int = 2,
    batch_size: int = 64,
    progress: bool = True,
    encoder: Callable[[], Callable[[np.ndarray], np.ndarray]] | None = None,
) -> Features:
    """Features of every file, from the cache where possible; new ones are added to it.

    Files that cannot be read or decoded get ``ok=False`` and a zero row (callers drop them).
    ``encoder`` builds another backbone than ImageNet's (``karung retrain`` uses the served
    model's own); the cache key must then name that backbone.
    """
    import time

    start = time.perf_counter()
    n = len(paths)
    x = np.zeros((n, FEATURE_DIM), dtype=np.float32)
    ok = np.zeros(n, dtype=bool)
    keys = [""] * n
    todo: dict[int, bytes] = {}
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for i, data in enumerate(pool.map(_read, paths)):
            if data is None:
                continue
            keys[i] = content_key(data)
            hit = cache.get(keys[i])
            if hit is not None:
                x[i], ok[i] = hit, True
            else:
                todo[i] = data
        computed = _compute_missing(
            todo, x, ok, keys, cache, prep, pool, threads, batch_size, progress, encoder
        )
    seconds = time.perf_counter() - start
    return Features(x, ok, tuple(keys), computed, int(ok.sum()) - computed, seconds)


def _compute_missing(
    todo: dict[int, bytes],
    x: np.ndarray,
    ok: np.ndarray,
    keys: list[str],
    cache: FeatureCache,
    prep: Preprocessing,
    pool: ThreadPoolExecutor,
    threads: int,
    batch_size: int,
    progress: bool,
    make_encoder: Callable[[], Callable[[np.ndarray], np.ndarray]] | None = None,
) -> int:
    """Decode and encode the files missing from the cache, batch by batch; returns the count."""
    if not todo:
        return 0
    encoder = make_encoder() if make_encoder else BackboneEncoder(prep, threads)
    computed = 0
    order = sorted(todo)
    # Two files with equal bytes share one key: each key is stored once. Flushed in shards of
    # a few thousand rows, so a killed run keeps most of its work and the folder stays small.
    fresh: dict[str, np.ndarray] = {}
    with tqdm(total=len(order), desc="features", unit="img", disable=not progress) as bar:
        for chunk in _chunks(order, batch_size):
            pixels = list(pool.map(lambda i: _pixels(todo[i], prep), chunk))
            good = [(i, p) for i, p in zip(chunk, pixels, strict=True) if p is not None]
            if good:
                feats = encoder(prep.normalize(np.stack([p for _, p in good])))
                idx = [i for i, _ in good]
                x[idx], ok[idx] = feats, True
                fresh.update((keys[i], row) for i, row in zip(idx, feats, strict=True))
                computed += len(good)
            if len(fresh) >= SHARD_ROWS:
                cache.put(list(fresh), np.stack(list(fresh.values())))
                fresh = {}
            bar.update(len(chunk))
    if fresh:
        cache.put(list(fresh), np.stack(list(fresh.values())))
    return computed
