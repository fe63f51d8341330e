"""Backfill inputs, shard files and the summary, without Ray."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from batch.batchkit import photo

from karung.batch.inputs import InputError, fingerprint, read_inputs
from karung.batch.report import markdown, summarise
from karung.batch.schema import SHARD_SCHEMA
from karung.batch.shards import JobMismatch, Manifest, finished, open_output, write_shard


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_csv_parquet_and_image_folders_in_order(tmp_path: Path) -> None:
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "b.jpg").write_bytes(photo(1))
    (tmp_path / "pics" / "a.png").write_bytes(photo(2))
    (tmp_path / "pics" / "notes.txt").write_text("not an image")
    listing = write_csv(
        tmp_path / "list.csv",
        [
            {"url": "http://cdn.example/1.jpg", "path": "", "listing_id": "L1", "seller_id": "S1"},
            {"url": "", "path": "pics/b.jpg", "listing_id": "L2", "seller_id": ""},
        ],
    )
    table = pa.table({"url": ["http://cdn.example/2.jpg"], "seller_id": ["S3"]})
    pq.write_table(table, tmp_path / "more.parquet")
    rows = read_inputs([listing, tmp_path / "more.parquet", tmp_path / "pics"]).to_pylist()
    assert [r["input_index"] for r in rows] == [0, 1, 2, 3, 4]
    assert rows[0] == {
        "input_index": 0, "url": "http://cdn.example/1.jpg", "path": None,
        "listing_id": "L1", "seller_id": "S1",
    }  # fmt: skip
    assert rows[1]["path"] == str((tmp_path / "pics" / "b.jpg").resolve())  # relative to the CSV
    assert rows[1]["seller_id"] is None
    assert rows[2]["url"] == "http://cdn.example/2.jpg" and rows[2]["listing_id"] is None
    assert [Path(r["path"]).name for r in rows[3:]] == ["a.png", "b.jpg"]  # walked, sorted


def test_folder_of_tables_limit_and_fingerprint(tmp_path: Path) -> None:
    folder = tmp_path / "tables"
    folder.mkdir()
    write_csv(folder / "b.csv", [{"url": "http://x.example/b"}])
    write_csv(folder / "a.csv", [{"url": "http://x.example/a1"}, {"url": "http://x.example/a2"}])
    rows = read_inputs([folder])
    assert rows.column("url").to_pylist() == [
        "http://x.example/a1", "http://x.example/a2", "http://x.example/b",
    ]  # fmt: skip
    assert read_inputs([folder], limit=2).num_rows == 2
    assert fingerprint(rows) == fingerprint(read_inputs([folder]))
    assert fingerprint(rows) != fingerprint(read_inputs([folder], limit=2))


@pytest.mark.parametrize("content", ["listing_id,seller_id\nL1,S1\n", ""])
def test_table_without_url_or_path_is_refused(tmp_path: Path, content: str) -> None:
    (tmp_path / "bad.csv").write_text(content)
    with pytest.raises(InputError):
        read_inputs([tmp_path / "bad.csv"])


def test_unknown_input_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        read_inputs([tmp_path / "missing.csv"])


def result(i: int, **values: object) -> dict[str, object]:
    row: dict[str, object] = {name: None for name in SHARD_SCHEMA.names}
    row.update({"input_index": i, "reasons": [], "matches": [], "model_version": "m1"})
    row.update(values)
    return row


def test_shards_are_complete_or_absent_and_the_manifest_pins_the_job(tmp_path: Path) -> None:
    manifest = Manifest(inputs="abc", rows=5, shard_size=2, model_version="m1")
    open_output(tmp_path, manifest)
    open_output(tmp_path, manifest)  # the same job: fine
    with pytest.raises(JobMismatch, match="model_version"):
        open_output(tmp_path, Manifest("abc", 5, 2, "m2"))
    rows = [result(1, decision="allow"), result(0, decision="block")]
    write_shard(tmp_path, 0, pa.Table.from_pylist(rows, schema=SHARD_SCHEMA))
    write_shard(tmp_path, 2, pa.Table.from_pylist([result(4)] * 2, schema=SHARD_SCHEMA))
    (tmp_path / "shards" / ".part-000001.parquet.tmp").write_bytes(b"half")
    assert finished(tmp_path, manifest) == {0}  # shard 2 holds 2 rows, expected 1
    assert not (tmp_path / "shards" / ".part-000001.parquet.tmp").exists()
    written = pq.read_table(tmp_path / "shards" / "part-000000.parquet")
    assert written.column("input_index").to_pylist() == [0, 1]  # sorted


def test_summary_counts_top_sellers_and_clusters() -> None:
    match = {"entry_id": 1, "bank": "b", "kind": "pdq", "distance": 3, "listing_id": "L0",
             "seller_id": "S-OLD", "source_url": None}  # fmt: skip
    pdq = "ab" * 32
    rows = [
        result(0, seller_id="S1", listing_id="L1", decision="block", sha256="s1", matches=[match]),
        result(1, seller_id="S1", listing_id="L2", decision="review", sha256="s2"),
        result(2, seller_id="S2", listing_id="L3", decision="review", sha256="s2"),
        result(
            3,
            seller_id="S3",
            listing_id="L4",
            decision="allow",
            sha256="s4",
            pdq=pdq,
            pdq_quality=90,
        ),
        result(
            4,
            seller_id="S4",
            listing_id="L5",
            decision="allow",
            sha256="s5",
            pdq=pdq,
            pdq_quality=90,
        ),
        result(5, seller_id="S5", error_code="corrupt_image"),
    ]
    summary = summarise(pa.Table.from_pylist(rows, schema=SHARD_SCHEMA), {"model_version": "m1"})
    assert summary["decisions"] == {"allow": 2, "block": 1, "error": 1, "review": 2}
    assert summary["errors"] == {"corrupt_image": 1}
    assert summary["top_sellers"][0] == {"seller_id": "S1", "flagged_listings": 2}
    clusters = [c["sellers"] for c in summary["seller_clusters"]]
    assert ["S-OLD", "S1", "S2"] in clusters and ["S3", "S4"] in clusters
    report = markdown(summary)
    assert "| block | 1 |" in report and "`S-OLD`, `S1`, `S2`" in report
