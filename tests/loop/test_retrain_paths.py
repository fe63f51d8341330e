"""Which labelled photos count as reviewed: those inside a reviewed folder, nothing else."""

from __future__ import annotations

from pathlib import Path

from karung.training.retrain.run import inside


def test_a_photo_counts_as_reviewed_only_inside_a_reviewed_folder(tmp_path: Path) -> None:
    reviewed = tmp_path / "reviewed"
    sibling = tmp_path / "reviewed-2024"  # starts like the reviewed folder, is another one
    for folder in (reviewed / "bale", sibling / "bale"):
        folder.mkdir(parents=True)
        (folder / "a.jpg").write_bytes(b"x")
    folders = [reviewed.resolve()]
    assert inside(reviewed / "bale" / "a.jpg", folders)
    assert not inside(sibling / "bale" / "a.jpg", folders)
    assert inside(str(tmp_path / "reviewed" / ".." / "reviewed" / "bale" / "a.jpg"), folders)
    assert not inside(tmp_path / "elsewhere.jpg", folders)
