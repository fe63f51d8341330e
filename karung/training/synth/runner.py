"""Parallel writer: assets once, then images in chunks across worker processes.

Workers render and write their own JPEGs and send back only manifest rows. Each image's RNG
is seeded from ``(seed, index)``, so the output is byte-identical for any worker count; the
serial path (``workers=1``) is the reference the parallel one is tested against.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from multiprocessing.pool import Pool
from pathlib import Path
from typing import Any, Final

import cv2
from tqdm import tqdm

from karung.training.splits import Split
from karung.training.synth.assets import AssetReport, photo_assets, pool_mapper, procedural_assets
from karung.training.synth.compose import Rendered, label_of, render_index
from karung.training.synth.config import SynthConfig
from karung.training.synth.contact import contact_sheet
from karung.training.synth.context import SplitAssets
from karung.training.synth.errors import OutputError
from karung.training.synth.scene import Scene
from karung.vision.labels import LABELS
from karung.vision.manifest import MANIFEST_FILE, SYNTH_LEAD_COLUMNS
from karung.vision.manifest import write_manifest as write_manifest_file

LEAD_COLUMNS: Final = SYNTH_LEAD_COLUMNS
SCENE_COLUMNS: Final = tuple(f.name for f in fields(Scene))
TAIL_COLUMNS: Final = ("image_width", "image_height", "extra")
COLUMNS: Final = LEAD_COLUMNS + SCENE_COLUMNS + TAIL_COLUMNS
CHUNK: Final = 8

# Set in each worker by _init (inherited without pickling under fork).
_STATE: dict[str, Any] = {}


@dataclass(frozen=True)
class SynthSummary:
    """What a run produced and how fast."""

    n: int
    per_label: dict[str, int]
    per_split: dict[str, int]
    seconds: float
    images_per_second: float
    workers: int
    assets: AssetReport


def file_name(label: str, index: int, n: int) -> str:
    """Relative path of image ``index`` (zero-padded so that names sort by index)."""
    return f"{label}/{index:0{max(6, len(str(n - 1)))}d}.jpg"


def _init(assets: dict[Split, SplitAssets], cfg: SynthConfig) -> None:
    cv2.setNumThreads(1)  # one process per core already
    _STATE["assets"], _STATE["cfg"] = assets, cfg


def _render_chunk(indexes: Sequence[int]) -> list[dict[str, str]]:
    cfg: SynthConfig = _STATE["cfg"]
    rows = []
    for index in indexes:
        r = render_index(index, cfg.seed, cfg.size, cfg.val_fraction, _STATE["assets"])
        rel = file_name(r.label, index, cfg.n)
        (cfg.out / rel).write_bytes(r.jpeg)
        rows.append(_row(rel, r))
    return rows


def _row(rel: str, r: Rendered) -> dict[str, str]:
    p = dict(r.params)
    row = {
        "file": rel,
        "label": r.label,
        "split": r.split,
        "index": str(r.index),
        "variant": str(p.pop("variant", "")),
        "source_ids": ";".join(r.source_ids),
        "sender_ids": ";".join(r.sender_ids),
    }
    for col in SCENE_COLUMNS + TAIL_COLUMNS[:2]:
        row[col] = str(p.pop(col, ""))
    row["extra"] = json.dumps(p, sort_keys=True, separators=(",", ":"))
    return row


def _chunks(n: int) -> Iterator[range]:
    for start in range(0, n, CHUNK):
        yield range(start, min(start + CHUNK, n))


def check_out(cfg: SynthConfig) -> None:
    """Refuse an output folder that already holds a set, unless ``overwrite``.

    Raises:
        OutputError: ``out`` holds a manifest (without ``overwrite``) or is a file.
    """
    if cfg.out.exists() and not cfg.out.is_dir():
        raise OutputError(f"{cfg.out} is a file, not a folder")
    if (cfg.out / MANIFEST_FILE).exists() and not cfg.overwrite:
        raise OutputError(f"{cfg.out} already holds a synthetic set (pass --overwrite)")


def prepare_out(cfg: SynthConfig) -> None:
    """Create ``out`` and its label folders; refuse to mix with an earlier set.

    Raises:
        OutputError: ``out`` holds a manifest (without ``overwrite``) or is not writable.
    """
    check_out(cfg)
    try:
        for label in LABELS:
            folder = cfg.out / label
            folder.mkdir(parents=True, exist_ok=True)
            for old in folder.glob("*.jpg"):
                old.unlink()
    except OSError as exc:
        raise OutputError(f"cannot write to {cfg.out}: {exc}") from exc


def _context() -> mp.context.BaseContext:
    # fork shares the segmented cut-outs with workers for free; spawn pickles them once.
    methods = mp.get_all_start_methods()
    return mp.get_context("fork" if "fork" in methods else "spawn")


def build_assets(cfg: SynthConfig, quiet: bool) -> tuple[dict[Split, SplitAssets], AssetReport]:
    """Procedural assets, or CC0 cut-outs segmented across ``cfg.workers`` processes."""
    if cfg.source is None:
        report = AssetReport({"train": 0, "val": 0}, {"train": 0, "val": 0}, 0, procedural=True)
        return procedural_assets(cfg.seed), report
    pool_size = cfg.effective_pool_size()
    if cfg.workers == 1:
        return photo_assets(cfg.source, cfg.seed, pool_size, cfg.val_fraction, map, quiet)
    with _context().Pool(cfg.workers, initializer=cv2.setNumThreads, initargs=(1,)) as pool:
        return photo_assets(
            cfg.source, cfg.seed, pool_size, cfg.val_fraction, pool_mapper(pool), quiet
        )


def render_all(
    cfg: SynthConfig, assets: dict[Split, SplitAssets], quiet: bool
) -> list[dict[str, str]]:
    """Render every index (serially or on a pool), with a progress bar; rows in index order."""
    bar = tqdm(total=cfg.n, desc="synth", unit="img", disable=quiet, smoothing=0.05)
    rows: list[dict[str, str]] = []
    pool: Pool | None = None
    try:
        if cfg.workers == 1:
            _init(assets, cfg)
            results: Iterator[list[dict[str, str]]] = map(_render_chunk, _chunks(cfg.n))
        else:
            pool = _context().Pool(cfg.workers, initializer=_init, initargs=(assets, cfg))
            results = pool.imap(_render_chunk, _chunks(cfg.n))
        for chunk in results:
            rows.extend(chunk)
            bar.update(len(chunk))
    finally:
        bar.close()
        if pool is not None:
            pool.close()
            pool.join()
    return rows


def write_manifest(out: Path, rows: Sequence[dict[str, str]]) -> Path:
    """Write ``out/manifest.csv`` (atomically: a temp file renamed into place)."""
    return write_manifest_file(out / MANIFEST_FILE, COLUMNS, rows)


def write_contact_sheets(cfg: SynthConfig, rows: Sequence[dict[str, str]]) -> list[Path]:
    """``out/contact_<label>.png``: the first ``contact_count`` images of each label."""
    written = []
    for label in LABELS:
        files = [cfg.out / r["file"] for r in rows if r["label"] == label][: cfg.contact_count]
        if files:
            path = cfg.out / f"contact_{label}.png"
            contact_sheet(files, f"{label} (seed {cfg.seed})").save(path, optimize=True)
            written.append(path)
    return written


def generate(cfg: SynthConfig, quiet: bool = False) -> SynthSummary:
    """Make the whole set described by ``cfg``: images, manifest, contact sheets."""
    t0 = time.perf_counter()
    check_out(cfg)  # fail fast, before the segmentation work
    assets, report = build_assets(cfg, quiet)
    prepare_out(cfg)
    rows = render_all(cfg, assets, quiet)
    write_manifest(cfg.out, rows)
    write_contact_sheets(cfg, rows)
    seconds = time.perf_counter() - t0
    summary = SynthSummary(
        n=cfg.n,
        per_label=dict(Counter(r["label"] for r in rows)),
        per_split=dict(Counter(r["split"] for r in rows)),
        seconds=round(seconds, 2),
        images_per_second=round(cfg.n / seconds, 2),
        workers=cfg.workers,
        assets=report,
    )
    (cfg.out / "synth.json").write_text(json.dumps(_summary_json(cfg, summary), indent=2) + "\n")
    return summary


def _summary_json(cfg: SynthConfig, s: SynthSummary) -> dict[str, Any]:
    conf = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()}
    for where in ("workers", "out", "overwrite"):  # not part of what the set is
        conf.pop(where)
    out = asdict(s)
    for volatile in ("seconds", "images_per_second", "workers"):
        out.pop(volatile)
    return {
        "config": conf,
        "summary": out,
        "labels": list(LABELS),
        "label_rule": "index % 4",
        "first_label": label_of(0),
    }
