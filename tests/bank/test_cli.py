"""``karung bank``: the command-line contract (JSON lines, exit codes, --db and KARUNG_DB)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hashing.hashkit import jpeg, png, scene
from PIL import ImageOps

from karung.cli.main import main


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """Two originals, an edited re-upload, an unrelated photo and a broken file."""
    paths = {
        "a": tmp_path / "a.png",
        "b": tmp_path / "b.png",
        "reupload": tmp_path / "reupload.jpg",
        "resized": tmp_path / "resized.jpg",
        "other": tmp_path / "other.jpg",
        "broken": tmp_path / "broken.jpg",
    }
    paths["a"].write_bytes(png(scene(0)))
    paths["b"].write_bytes(png(scene(1)))
    paths["reupload"].write_bytes(jpeg(ImageOps.mirror(scene(0)).resize((240, 180))))
    paths["resized"].write_bytes(jpeg(scene(0).resize((240, 180))))
    paths["other"].write_bytes(jpeg(scene(12)))
    paths["broken"].write_bytes(b"\xff\xd8\xff\xe0 truncated")
    return paths


def bank(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict[str, Any]]]:
    """Run ``karung bank ARGS`` in-process; return the exit code and the JSON lines printed."""
    code = main(["bank", *args])
    out = capsys.readouterr().out
    return code, [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_add_match_list_remove(
    tmp_path: Path, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    db = ["--db", f"sqlite:///{tmp_path}/cli.db"]
    code, lines = bank(
        capsys,
        "add",
        str(files["a"]),
        str(files["b"]),
        "--bank",
        "stolen",
        "--seller",
        "S1",
        "--listing",
        "L1",
        *db,
    )
    assert code == 0 and [x["created"] for x in lines] == [True, True]
    assert {x["source"] for x in lines} == {str(files["a"]), str(files["b"])}
    code, again = bank(capsys, "add", str(files["a"]), "--bank", "stolen", *db)
    assert code == 0 and again[0]["created"] is False
    assert again[0]["entry_id"] == lines[0]["entry_id"]

    queries = [str(files[k]) for k in ("reupload", "other", "broken", "a")]
    code, out = bank(capsys, "match", *queries, *db)
    assert code == 2  # one item failed
    assert [x["source"] for x in out] == queries  # one line per image, in order
    reupload, other, broken, exact = out
    assert set(reupload) == {"source", "matches"}
    [m] = reupload["matches"]
    assert (m["entry_id"], m["seller_id"], m["listing_id"]) == (lines[0]["entry_id"], "S1", "L1")
    assert m["kind"] in ("pdq", "phash") and m["bank"] == "stolen"
    assert other["matches"] == []
    assert broken["error"]["code"] == "corrupt_image" and "matches" not in broken
    assert exact["matches"][0]["kind"] == "sha256"

    code, listed = bank(capsys, "list", *db)
    assert code == 0 and [x["id"] for x in listed] == [lines[0]["entry_id"], lines[1]["entry_id"]]
    code, banks = bank(capsys, "list", "--banks", *db)
    assert banks[0]["name"] == "stolen" and banks[0]["entries"] == 2

    code, removed = bank(capsys, "remove", str(lines[0]["entry_id"]), "999", *db)
    assert code == 2
    assert removed[0] == {"id": lines[0]["entry_id"], "removed": True, "bank": "stolen"}
    assert removed[1]["error"]["code"] == "entry_not_found"
    code, out = bank(capsys, "match", str(files["reupload"]), *db)
    assert code == 0 and out[0]["matches"] == []


def test_karung_db_environment_variable(
    tmp_path: Path,
    files: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KARUNG_DB", f"sqlite:///{tmp_path}/env.db")
    assert bank(capsys, "add", str(files["a"]), "--bank", "stolen")[0] == 0
    assert (tmp_path / "env.db").exists()
    assert bank(capsys, "match", str(files["reupload"]))[1][0]["matches"]


def test_disable_enable_configure(
    tmp_path: Path, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    db = ["--db", f"sqlite:///{tmp_path}/t.db"]
    bank(capsys, "add", str(files["a"]), "--bank", "stolen", *db)
    code, [info] = bank(capsys, "disable", "stolen", *db)
    assert code == 0 and info["enabled"] is False
    assert bank(capsys, "match", str(files["reupload"]), *db)[1][0]["matches"] == []
    bank(capsys, "enable", "stolen", *db)
    assert bank(capsys, "match", str(files["reupload"]), *db)[1][0]["matches"]
    code, [info] = bank(capsys, "configure", "stolen", "--pdq", "0", "--phash", "0", *db)
    assert (info["pdq_threshold"], info["phash_threshold"]) == (0, 0)
    # At 0 only identical hashes count: the mirrored copy's pHash mirrored back is one, its PDQ
    # (4 bits from the original's mirrored hash) no longer is.
    matches = bank(capsys, "match", str(files["reupload"]), *db)[1][0]["matches"]
    assert [(m["kind"], m["distance"]) for m in matches] == [("phash", 0)]
    assert bank(capsys, "match", str(files["other"]), *db)[1][0]["matches"] == []
    assert main(["bank", "configure", "stolen", "--pdq", "999", *db]) == 2
    assert "invalid_bank_setting" in capsys.readouterr().err
    assert main(["bank", "disable", "missing", *db]) == 2
    assert "bank_not_found" in capsys.readouterr().err


def test_export_import_and_sellers(
    tmp_path: Path, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    src = ["--db", f"sqlite:///{tmp_path}/src.db"]
    dst = ["--db", f"sqlite:///{tmp_path}/dst.db"]
    bank(capsys, "add", str(files["a"]), "--bank", "stolen", "--seller", "old", *src)
    bank(capsys, "add", str(files["resized"]), "--bank", "stolen", "--seller", "new", *src)
    csv_path = tmp_path / "list.csv"
    assert bank(capsys, "export", "--out", str(csv_path), *src)[0] == 0
    assert b"\x89PNG" not in csv_path.read_bytes() and csv_path.read_text().count("\n") == 3
    code, [report] = bank(capsys, "import", str(csv_path), *dst)
    assert code == 0 and report == {"added": 2, "existing": 0, "errors": 0}
    code, [cluster] = bank(capsys, "sellers", *dst)
    assert cluster["sellers"] == ["new", "old"] and cluster["links"][0]["source"] == "bank"
    code, [mine] = bank(capsys, "sellers", "--seller", "old", *dst)
    assert mine["sellers"] == ["new", "old"]
    # A mirrored copy banked under a third account is linked when it is added (match event).
    bank(capsys, "add", str(files["reupload"]), "--bank", "stolen", "--seller", "third", *src)
    code, [cluster] = bank(capsys, "sellers", *src)
    assert cluster["sellers"] == ["new", "old", "third"]
    assert {x["source"] for x in cluster["links"]} == {"bank", "event"}

    broken = tmp_path / "broken.csv"
    broken.write_text("bank,pdq,pdq_quality\nstolen,abc,90\n")
    code, lines = bank(capsys, "import", str(broken), *dst)
    assert code == 2
    assert lines[0]["line"] == 2 and lines[0]["error"]["code"] == "malformed_csv_row"
    assert lines[-1] == {"added": 0, "existing": 0, "errors": 1}


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["bank", "add", "x.jpg"])  # --bank is required
    assert info.value.code == 2
    assert "--bank" in capsys.readouterr().err
