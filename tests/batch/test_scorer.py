"""One batch of rows through the backfill scorer (no Ray): real fetches on loopback, real files,
a real bank snapshot from SQLite, the tiny model."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
from batch.batchkit import bank_db, photo
from serve.servekit import ImageServer

from karung.batch.bundle import ModelBundle
from karung.batch.scorer import BatchScorer, ScorerOptions
from karung.batch.snapshot import BankSnapshot
from karung.serve.bank.store import NewEntry
from karung.serve.fetch import FetchLimits
from karung.vision.classifier import Classifier
from karung.vision.decode import decode_image

LOOPBACK_ONLY = FetchLimits(allowed_networks=("127.0.0.1/32",), total_timeout=5.0)


@pytest.fixture(scope="module")
def scored(
    tiny_model: Path, images: ImageServer, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, Any]]:
    """Every kind of row, scored in one batch, by name."""
    tmp = tmp_path_factory.mktemp("scorer")
    (tmp / "good.jpg").write_bytes(photo(5))
    _, engine = bank_db(tmp)
    options = ScorerOptions(
        fetch=LOOPBACK_ONLY, thumbnails=True, bank_name="backfill", min_risk=0.0
    )
    bundle = ModelBundle.from_path(tiny_model)
    scorer = BatchScorer(bundle.load("torch"), BankSnapshot.read(engine).matcher(), options)
    port = images.port
    sources: dict[str, dict[str, Any]] = {
        "url": {"url": images.url("/img/1.jpg"), "seller_id": "S1", "listing_id": "L1"},
        "banked": {"url": images.url("/img/40.jpg"), "seller_id": "S2"},
        "html": {"url": images.url("/html")},
        "corrupt": {"url": images.url("/corrupt.jpg")},
        "missing_page": {"url": images.url("/status/404")},
        "loopback_other": {"url": f"http://127.0.0.2:{port}/img/1.jpg"},
        "metadata": {"url": "http://169.254.169.254/latest/meta-data/"},
        "ftp": {"url": "ftp://127.0.0.1/x.jpg"},
        "file": {"path": str(tmp / "good.jpg")},
        "no_file": {"path": str(tmp / "absent.jpg")},
        "nothing": {},
    }
    rows = [{"input_index": i, **row} for i, row in enumerate(sources.values())]
    return dict(zip(sources, scorer.score_rows(rows), strict=True))


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("html", "unsupported_format"),
        ("corrupt", "corrupt_image"),
        ("missing_page", "http_status"),
        ("loopback_other", "address_forbidden"),
        ("metadata", "address_forbidden"),
        ("ftp", "url_scheme"),
        ("no_file", "file_unreadable"),
        ("nothing", "item_invalid"),
    ],
)
def test_bad_rows_carry_their_stable_code(
    scored: dict[str, dict[str, Any]], name: str, code: str
) -> None:
    row = scored[name]
    assert row["error_code"] == code, row["error_message"]
    assert row["decision"] is None and row["risk"] is None


def test_good_rows_are_scored_hashed_and_decided(
    scored: dict[str, dict[str, Any]], tiny_model: Path, tmp_path: Path
) -> None:
    row = scored["url"]
    assert row["error_code"] is None
    assert (row["listing_id"], row["seller_id"]) == ("L1", "S1")
    assert len(row["pdq"]) == 64 and len(row["phash"]) == 16
    assert row["decision"] == "review" and row["reasons"] == ["risk>=review_threshold"]
    assert row["_thumbnail"][:3] == b"\xff\xd8\xff"  # review band: a thumbnail for the queue
    entry = pickle.loads(row["_bank_entry"])
    assert isinstance(entry, NewEntry) and entry.bank == "backfill" and entry.seller_id == "S1"
    # karung score's path: decode at the model's input size, Classifier.score.
    clf = Classifier.from_path(tiny_model, backend="torch")
    image = decode_image(photo(5), max_bytes=1 << 24, max_pixels=1 << 26, target_size=64)
    expected = clf.score([image])[0]
    # Equal up to float noise: a batch of 3 and a batch of 1 take different kernels.
    assert scored["file"]["risk"] == pytest.approx(expected.risk, abs=1e-4)
    assert scored["file"]["decision"] == str(expected.decision)


def test_a_banked_photo_blocks_with_the_match(scored: dict[str, dict[str, Any]]) -> None:
    row = scored["banked"]
    assert row["decision"] == "block" and row["model_decision"] == "review"
    assert row["reasons"][0] == "bank_match:sha256:distance=0"
    assert row["matches"][0]["seller_id"] == "S-OLD"
    assert row["matches"][0]["listing_id"] == "L-OLD"
    assert row.get("_thumbnail") is None  # blocked: not for the review queue
