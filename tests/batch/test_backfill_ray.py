"""``karung backfill`` on a real local Ray cluster (2 CPUs): loopback URLs and local files, bad
rows, the database writes, idempotent reruns, and a resume after the driver is killed."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from batch.batchkit import bank_db, photo
from serve.servekit import ImageServer
from sqlalchemy import Engine, func, select

from karung.cli.main import main
from karung.serve.bank.models import EntryRow
from karung.serve.bank.service import BankService
from karung.serve.review.models import ReviewItem

pytestmark = [pytest.mark.ray, pytest.mark.slow]
KARUNG = [sys.executable, "-m", "karung.cli.main"]


def write_inputs(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["url", "path", "listing_id", "seller_id"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def backfill_args(inputs: Path, out: Path, model: Path, *extra: str) -> list[str]:
    return [
        "backfill", str(inputs), "--out", str(out), "--model", str(model),
        "--backend", "torch", "--allow-network", "127.0.0.1/32", "--no-progress", *extra,
    ]  # fmt: skip


def results(out: Path) -> list[dict[str, Any]]:
    return pq.read_table(out / "shards").sort_by("input_index").to_pylist()


def count(engine: Engine, query: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


@pytest.fixture(scope="module")
def catalogue(images: ImageServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("catalogue")
    (tmp / "a.jpg").write_bytes(photo(5))
    (tmp / "b.png").write_bytes(photo(6, 80, 120))
    port = images.port
    return write_inputs(
        tmp / "listings.csv",
        [
            {"url": images.url("/img/1.jpg"), "listing_id": "L1", "seller_id": "S1"},
            {"url": images.url("/img/40.jpg"), "listing_id": "L2", "seller_id": "S2"},
            {"url": images.url("/html"), "listing_id": "L3", "seller_id": "S1"},
            {"url": images.url("/corrupt.jpg"), "listing_id": "L4", "seller_id": "S3"},
            {"url": f"http://127.0.0.2:{port}/img/2.jpg", "listing_id": "L5", "seller_id": "S3"},
            {"url": "http://[::1", "listing_id": "L6"},
            {"path": "a.jpg", "listing_id": "L7", "seller_id": "S4"},
            {"path": "b.png", "listing_id": "L8", "seller_id": "S5"},
            {"path": "gone.jpg", "listing_id": "L9"},
            {"url": images.url("/img/1.jpg"), "listing_id": "L10", "seller_id": "S6"},
        ],
    )


def test_backfill_scores_every_row_feeds_the_database_and_reruns_idempotently(
    ray_cluster: str, catalogue: Path, tiny_model: Path, tmp_path: Path
) -> None:
    db_url, engine = bank_db(tmp_path)
    out = tmp_path / "out"
    extra = ["--db", db_url, "--shard-size", "3", "--enqueue-review", "--record-matches"]
    extra += ["--add-to-bank", "backfill", "--min-risk", "0.3"]
    args = backfill_args(catalogue, out, tiny_model, *extra)
    assert main(args) == 2  # some rows are errors
    rows = results(out)
    assert [r["input_index"] for r in rows] == list(range(10))
    codes = [r["error_code"] for r in rows]
    assert codes == [
        None, None, "unsupported_format", "corrupt_image", "address_forbidden",
        "url_invalid", None, None, "file_unreadable", None,
    ]  # fmt: skip
    assert rows[1]["decision"] == "block" and rows[1]["matches"][0]["seller_id"] == "S-OLD"
    assert rows[0]["decision"] == rows[9]["decision"] == "review"
    assert rows[0]["sha256"] == rows[9]["sha256"] and rows[0]["pdq"] == rows[9]["pdq"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run"]["worker_cpu_seconds"] > 0
    clusters = [c["sellers"] for c in summary["seller_clusters"]]
    assert ["S-OLD", "S2"] in clusters and ["S1", "S6"] in clusters
    assert "# Backfill report" in (out / "report.md").read_text()
    # The review band went to the queue once per photo; risky photos went to the bank.
    ok = [r for r in rows if r["error_code"] is None]
    review = {r["sha256"] for r in ok if r["decision"] == "review"}
    risky = {r["sha256"] for r in ok if r["risk"] >= 0.3}
    assert risky, "the tiny model must put some photo above --min-risk"
    queued = select(func.count(ReviewItem.id))
    banked = select(func.count(EntryRow.id)).where(EntryRow.bank == "backfill")
    assert (count(engine, queued), count(engine, banked)) == (len(review), len(risky))
    links = BankService(engine, load=False).seller_clusters()
    assert [sorted(c.sellers) for c in links] == [["S-OLD", "S2"]]  # the service's links too
    # Same command again: every shard is skipped, nothing changes.
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "shards").iterdir()}
    assert main(args) == 2
    again = json.loads((out / "summary.json").read_text())["run"]
    assert (again["shards_skipped"], again["shards_written"]) == (4, 0)
    assert {p.name: p.stat().st_mtime_ns for p in (out / "shards").iterdir()} == stamps
    assert (count(engine, queued), count(engine, banked)) == (len(review), len(risky))
    assert results(out) == rows
    # The risk of a local file is the risk `karung score` gives it.
    scored = subprocess.run(
        [*KARUNG, "score", str(catalogue.parent / "a.jpg"), str(catalogue.parent / "b.png"),
         "--model", str(tiny_model), "--backend", "torch"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    lines = [json.loads(line) for line in scored.stdout.splitlines()]
    for line, row in zip(lines, rows[6:8], strict=True):
        assert line["sha256"] == row["sha256"]
        assert row["risk"] == pytest.approx(line["risk"], abs=1e-4)
        assert row["model_decision"] == line["decision"]


def test_a_killed_driver_resumes_without_redoing_finished_shards(
    ray_cluster: str, images: ImageServer, tiny_model: Path, tmp_path: Path
) -> None:
    rows = [{"url": images.url(f"/delay/150/{i}.jpg"), "seller_id": f"S{i}"} for i in range(32)]
    inputs = write_inputs(tmp_path / "slow.csv", rows)
    out = tmp_path / "out"
    args = backfill_args(inputs, out, tiny_model, "--db", "none", "--shard-size", "4",
                         "--batch-size", "1")  # fmt: skip
    driver = subprocess.Popen(
        [*KARUNG, *args, "--address", ray_cluster],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    try:
        while not list((out / "shards").glob("part-*.parquet")):
            assert driver.poll() is None, "the driver ended before writing a shard"
            assert time.monotonic() < deadline, "no shard within 120 s"
            time.sleep(0.05)
    finally:
        driver.kill()  # SIGKILL: no cleanup, mid-run
        driver.wait()
    before = {
        p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (out / "shards").glob("part-*")
    }
    assert 1 <= len(before) < 8, "the kill must land mid-run"
    assert main(args) == 0
    run = json.loads((out / "summary.json").read_text())["run"]
    assert run["shards_skipped"] == len(before)
    assert run["shards_written"] == 8 - len(before)
    after = {
        p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (out / "shards").glob("part-*")
    }
    assert {k: after[k] for k in before} == before  # finished shards were not redone
    done = results(out)
    assert [r["input_index"] for r in done] == list(range(32))  # nothing lost, nothing twice
    assert all(r["error_code"] is None for r in done)
