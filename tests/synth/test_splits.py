"""sender_split: stable, about the asked fraction, and monotonic in the fraction."""

from __future__ import annotations

import subprocess
import sys

import pytest

from karung.training.splits import index_split, sender_split


def test_fraction_is_about_right() -> None:
    val = sum(sender_split(str(i)) == "val" for i in range(5000))
    assert 0.18 < val / 5000 < 0.22


def test_same_in_a_fresh_interpreter() -> None:
    # Python's own hash() is salted per process; ours must not be.
    ids = [str(i) for i in range(50)]
    here = [sender_split(s) for s in ids]
    code = (
        "from karung.training.splits import sender_split;"
        f"print(','.join(sender_split(s) for s in {ids!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().split(",") == here


def test_raising_the_fraction_only_moves_train_to_val() -> None:
    for i in range(500):
        if sender_split(str(i), val_fraction=0.2) == "val":
            assert sender_split(str(i), val_fraction=0.5) == "val"


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_bad_fraction_raises(bad: float) -> None:
    with pytest.raises(ValueError, match="val_fraction"):
        sender_split("1", val_fraction=bad)


def test_index_split_differs_from_sender_split_keyspace() -> None:
    # Image indexes and sender ids hash in separate key spaces.
    same = sum(index_split(i) == sender_split(str(i)) for i in range(400))
    assert same < 400
