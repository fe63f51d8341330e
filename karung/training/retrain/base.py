"""The base set shipped beside a model: compact features of its synthetic and real-negative data.

``karung retrain`` refits the classifier on the base set plus the moderators' labels. A fresh
clone has neither the synthetic images (``data/``) nor the hour it takes to render and encode
them, so the features themselves ship with the model as ``retrain_base.npz``: every row of the
pooled features stored as ``uint8`` with one scale per dimension (pooled ReLU6 outputs are
non-negative; the rounding moves a risk by about 1e-3, measured when the file is packed), plus
labels, split and whether the row is a real photo. The file names the backbone digest it was
computed with; a model with another backbone cannot use it.

Build it (``make retrain-base``)::

    python -m karung.training.retrain.base --model models/default \\
        --data data/synth --data data/real.csv --out models/default/retrain_base.npz
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from karung.training.data import load_samples
from karung.training.errors import KarungTrainingError
from karung.training.features import default_cache_dir
from karung.training.retrain.encoder import backbone_digest, model_features
from karung.vision.checkpoint import Checkpoint

BASE_FORMAT: Final = "karung-retrain-base-v1"


class BaseSetError(KarungTrainingError):
    """The shipped base set is missing, malformed or made with another backbone."""

    code = "base_set_error"


@dataclass(frozen=True)
class BaseSet:
    """Feature rows with labels; ``val`` marks validation senders, ``real`` real photos."""

    x: np.ndarray
    y: np.ndarray
    val: np.ndarray
    real: np.ndarray
    meta: dict[str, Any]

    @property
    def size(self) -> int:
        """Number of rows."""
        return int(self.y.size)


def quantise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``uint8`` codes and per-dimension scales of non-negative features."""
    top = np.maximum(x.max(axis=0), 1e-8).astype(np.float32)
    scale = top / 255.0
    codes = np.clip(np.rint(x / scale), 0, 255).astype(np.uint8)
    return codes, scale


def save_base(path: Path, base: BaseSet) -> Path:
    """Write ``base`` compactly (atomic rename)."""
    codes, scale = quantise(np.maximum(base.x, 0.0))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as fh:
        np.savez_compressed(
            fh,
            codes=codes,
            scale=scale,
            y=base.y.astype(np.int8),
            val=base.val.astype(bool),
            real=base.real.astype(bool),
            meta=np.asarray(json.dumps({**base.meta, "format": BASE_FORMAT})),
        )
    os.replace(tmp, path)
    return path


def load_base(path: Path, ckpt: Checkpoint) -> BaseSet:
    """Read a base set and check it was made with ``ckpt``'s backbone and labels.

    Raises:
        BaseSetError: missing or unreadable file, other backbone, other labels.
    """
    try:
        with np.load(path) as z:
            meta = json.loads(str(z["meta"]))
            x = z["codes"].astype(np.float32) * z["scale"]
            y, val, real = z["y"].astype(np.int64), z["val"], z["real"]
    except (OSError, ValueError, KeyError) as exc:
        raise BaseSetError(f"cannot read the base set {path}: {exc}") from exc
    if meta.get("format") != BASE_FORMAT:
        raise BaseSetError(f"{path} is not a {BASE_FORMAT} file")
    if meta.get("backbone") != backbone_digest(ckpt):
        raise BaseSetError(f"{path} was computed with another backbone than the champion's")
    if tuple(meta.get("labels", ())) != ckpt.labels:
        raise BaseSetError(f"{path} has labels {meta.get('labels')}, the model {ckpt.labels}")
    return BaseSet(x=x, y=y, val=val.astype(bool), real=real.astype(bool), meta=meta)


def build_base(
    ckpt: Checkpoint, data: list[str], *, threads: int = 2, progress: bool = True
) -> BaseSet:
    """Features of every readable image of ``data`` under ``ckpt``'s backbone."""
    samples = load_samples(data, ckpt.labels)
    feats = model_features(
        [s.path for s in samples],
        ckpt,
        default_cache_dir(),
        threads=threads,
        progress=progress,
    )
    kept = [s for s, ok in zip(samples, feats.ok, strict=True) if ok]
    meta = {
        "backbone": backbone_digest(ckpt),
        "labels": list(ckpt.labels),
        "input_size": ckpt.preprocessing.input_size,
        "sources": [str(d) for d in data],
        "rows": len(kept),
        "synthetic_rows": sum(not s.is_real for s in kept),
        "real_rows": sum(s.is_real for s in kept),
    }
    return BaseSet(
        x=feats.x[feats.ok],
        y=np.array([s.label for s in kept], dtype=np.int64),
        val=np.array([s.split != "train" for s in kept]),
        real=np.array([s.is_real for s in kept]),
        meta=meta,
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m karung.training.retrain.base``: pack a model's base set."""
    parser = argparse.ArgumentParser(description="pack the retrain base set of a model")
    parser.add_argument("--model", required=True, help="model folder (its backbone is used)")
    parser.add_argument("--data", action="append", required=True, help="labelled data; repeatable")
    parser.add_argument("--out", required=True, help="output .npz (e.g. MODEL/retrain_base.npz)")
    parser.add_argument("--synth-seed", type=int, default=0, help="recorded in the file")
    parser.add_argument("--synth-command", default="", help="recorded in the file")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    ckpt = Checkpoint.load(args.model)
    base = build_base(ckpt, list(args.data), threads=args.threads)
    meta = {**base.meta, "synth_seed": args.synth_seed, "synth_command": args.synth_command}
    out = save_base(Path(args.out), BaseSet(base.x, base.y, base.val, base.real, meta))
    reloaded = load_base(out, ckpt)
    err = float(np.abs(reloaded.x - base.x).max())
    print(json.dumps({"out": str(out), "bytes": out.stat().st_size, "max_abs_error": err, **meta}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
