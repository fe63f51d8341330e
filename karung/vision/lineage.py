"""Where a model came from: ``lineage.json`` beside its checkpoint.

Every model folder written by ``karung retrain`` records its parent (version and folder), the
data it saw (counts and a content hash of the reviewed photos, the synthetic seed of its base
set), the champion/challenger comparison that judged it and, once promoted, who promoted it and
when. ``karung models list|show|rollback`` and the review UI read it; a model without the file
(e.g. the shipped one) is a root.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from karung.vision.modeldir import ModelDir


@dataclass(frozen=True)
class Lineage:
    """The provenance record of one model folder."""

    model_version: str
    parent_version: str = ""
    parent_path: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    synth_seed: int | None = None
    comparison: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    promoted: bool = False
    promoted_by: str = ""
    promoted_at: str = ""
    forced: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Lineage:
        """Read the fields this version knows, ignoring newer ones."""
        known = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw}
        return cls(**known)


def content_digest(hashes: Iterable[str]) -> str:
    """One SHA-256 over a set of content hashes (order-free): names a reviewed set."""
    digest = hashlib.sha256()
    for h in sorted(set(hashes)):
        digest.update(h.encode())
    return digest.hexdigest()


def read_lineage(path: str | os.PathLike[str]) -> Lineage | None:
    """The lineage of a model folder (or checkpoint file), None when it has none."""
    file = ModelDir.at(path).lineage
    try:
        return Lineage.from_dict(json.loads(file.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def write_lineage(path: str | os.PathLike[str], lineage: Lineage) -> Path:
    """Write ``lineage.json`` atomically into a model folder."""
    target = ModelDir.at(path).lineage
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(lineage.to_dict(), indent=2) + "\n", encoding="utf-8")
    tmp.replace(target)
    return target


def mark_promoted(path: str | os.PathLike[str], by: str, at: str, *, forced: bool) -> Lineage:
    """Record who promoted the model in its folder (a root model gets a minimal record)."""
    found = read_lineage(path) or Lineage(model_version="")
    updated = replace(found, promoted=True, promoted_by=by, promoted_at=at, forced=forced)
    write_lineage(path, updated)
    return updated
