"""Source material per split: segmented CC0 cut-outs (or procedural ones) and real photos.

Cut-outs are segmented once per run, in parallel, before any image is drawn; workers then
inherit them (fork) instead of segmenting again per image.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.pool import Pool
from pathlib import Path

import numpy as np
from tqdm import tqdm

from karung.training.splits import SPLITS, Split
from karung.training.synth.context import SplitAssets
from karung.training.synth.procgarment import procedural_cutout
from karung.training.synth.segment import Cutout, CutoutError, cut_photo
from karung.training.synth.sources import SourcePhoto, by_split, read_source

PROCEDURAL_POOL = 48  # per split


@dataclass(frozen=True)
class AssetReport:
    """What went into the assets (printed by the CLI)."""

    photos: dict[str, int]
    cutouts: dict[str, int]
    failed: int
    procedural: bool


def procedural_assets(seed: int, per_split: int = PROCEDURAL_POOL) -> dict[Split, SplitAssets]:
    """Assets for ``--source none``: procedural garments only, different per split."""
    out: dict[Split, SplitAssets] = {}
    for k, split in enumerate(SPLITS):
        rng = np.random.default_rng([seed, 7919, k])
        cuts = tuple(procedural_cutout(rng, f"{split}-{i}") for i in range(per_split))
        out[split] = SplitAssets(cutouts=cuts)
    return out


def choose_pool(photos: Sequence[SourcePhoto], k: int, seed: int) -> list[SourcePhoto]:
    """``k`` photos (deterministic for ``seed``), in image-id order."""
    if k >= len(photos):
        return list(photos)
    rng = np.random.default_rng([seed, 104729])
    picked = rng.choice(len(photos), size=k, replace=False)
    return [photos[i] for i in sorted(picked)]


def _try_cut(photo: SourcePhoto) -> Cutout | str:
    try:
        return cut_photo(photo)
    except CutoutError as exc:
        return str(exc)


Mapper = Callable[
    [Callable[[SourcePhoto], Cutout | str], Iterable[SourcePhoto]], Iterator[Cutout | str]
]


def photo_assets(
    source: Path,
    seed: int,
    pool_size: int,
    val_fraction: float,
    mapper: Mapper,
    quiet: bool = False,
) -> tuple[dict[Split, SplitAssets], AssetReport]:
    """Read ``source``, split its photos by sender, segment a pool per split with ``mapper``.

    ``mapper`` is ``map``-like (serial ``map`` or a pool's ``imap``), results in input order.
    A split whose photos all fail to segment falls back to procedural cut-outs.
    """
    photos = by_split(read_source(source), val_fraction)
    total = sum(len(v) for v in photos.values())
    out: dict[Split, SplitAssets] = {}
    failed, counts = 0, dict[str, int]()
    fallback = procedural_assets(seed)
    for split in SPLITS:
        share = max(8, round(pool_size * len(photos[split]) / max(total, 1)))
        pool = choose_pool(photos[split], share, seed)
        progress = tqdm(
            mapper(_try_cut, pool), total=len(pool), desc=f"segment {split}", disable=quiet
        )
        results = list(progress)
        cuts = tuple(r for r in results if isinstance(r, Cutout))
        failed += len(results) - len(cuts)
        counts[split] = len(cuts)
        if not cuts:
            cuts = fallback[split].cutouts
        out[split] = SplitAssets(cutouts=cuts, photos=tuple(photos[split]))
    sizes = {str(s): len(photos[s]) for s in SPLITS}
    report = AssetReport(sizes, counts, failed, procedural=False)
    return out, report


def pool_mapper(pool: Pool | None) -> Mapper:
    """A :data:`Mapper` over ``pool`` (or the builtin ``map`` when ``None``)."""
    if pool is None:
        return map
    return lambda fn, items: pool.imap(fn, items, chunksize=4)
