"""The manifest format: one reader and writer, validated with a typed error."""

from __future__ import annotations

from pathlib import Path

import pytest

from karung.vision.errors import KarungVisionError
from karung.vision.manifest import (
    MANIFEST_FILE,
    REVIEW_COLUMNS,
    ManifestError,
    manifest_path,
    read_manifest,
    write_manifest,
)


def test_written_rows_read_back_with_the_trainers_columns(tmp_path: Path) -> None:
    rows = [
        {"file": "a.jpg", "label": "bale", "split": "VAL", "sender_id": " s1 "},
        {"file": "/abs/b.jpg", "label": "sack", "split": "", "sender_id": ""},
    ]
    path = write_manifest(tmp_path / "set" / MANIFEST_FILE, REVIEW_COLUMNS, rows)
    assert manifest_path(tmp_path / "set") == path and manifest_path(path) == path
    assert not list(path.parent.glob("*.tmp"))  # written through a renamed temp file
    first, second = read_manifest(path)
    assert (first.file, first.label, first.split, first.sender_id) == ("a.jpg", "bale", "val", "s1")
    assert first.line == 2 and first.resolve(path) == path.parent / "a.jpg"
    assert second.resolve(path) == Path("/abs/b.jpg") and second.split == "" and not second.variant
    assert path.read_text().splitlines()[0] == ",".join(REVIEW_COLUMNS)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("path,label\na.jpg,bale\n", "needs columns file,label"),
        ("file,label,split\na.jpg,bale,holdout\n", r"manifest.csv:2: unknown split 'holdout'"),
    ],
)
def test_a_bad_manifest_is_a_typed_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / MANIFEST_FILE
    path.write_text(text)
    with pytest.raises(ManifestError, match=message) as caught:
        read_manifest(path)
    assert isinstance(caught.value, KarungVisionError) and caught.value.code == "manifest_invalid"


def test_writing_refuses_rows_outside_the_columns(tmp_path: Path) -> None:
    path = tmp_path / MANIFEST_FILE
    with pytest.raises(ManifestError):
        write_manifest(path, ("file", "label"), [{"file": "a.jpg", "label": "x", "oops": "1"}])
    with pytest.raises(ManifestError, match="starts with the columns file,label"):
        write_manifest(path, ("label", "file"), [])
    assert not path.exists() and not list(tmp_path.iterdir())
