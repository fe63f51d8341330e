"""Train/validation assignment by sender, shared by the synthesiser and the trainer.

A sender's photos share a room, a floor and a phone, so splitting by image would leak those
cues into validation; the split is therefore a pure function of the sender id. It uses a
keyed hash (not Python's salted ``hash`` and no RNG state), so it is the same in every process,
on every machine and in every run.
"""

from __future__ import annotations

import hashlib
from typing import Final, Literal

Split = Literal["train", "val"]
SPLITS: Final[tuple[Split, Split]] = ("train", "val")
_KEY: Final = b"karung-split-v1:"


def unit_hash(key: str) -> float:
    """Map ``key`` to a float in ``[0, 1)``, uniformly and stably (SHA-256 of a fixed prefix)."""
    digest = hashlib.sha256(_KEY + key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def _check_fraction(val_fraction: float) -> None:
    if not 0.0 <= val_fraction <= 1.0:
        raise ValueError(f"val_fraction must be within [0, 1], got {val_fraction}")


def sender_split(sender_id: str, *, val_fraction: float = 0.2) -> Split:
    """Return ``"val"`` for about ``val_fraction`` of all senders and ``"train"`` for the rest.

    The same ``sender_id`` always lands in the same split for a given ``val_fraction``, and
    raising the fraction only moves senders from train to val (never the other way).
    """
    _check_fraction(val_fraction)
    return "val" if unit_hash(f"sender:{sender_id}") < val_fraction else "train"


def index_split(index: int, *, val_fraction: float = 0.2) -> Split:
    """Split of the ``index``-th synthetic image (used before any source photo is chosen)."""
    _check_fraction(val_fraction)
    return "val" if unit_hash(f"image:{index}") < val_fraction else "train"
