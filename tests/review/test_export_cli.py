"""``karung review`` CLI: moderators, export (read back by the trainer's loader), stats, outbox."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from kit.models import tiny_checkpoint
from PIL import Image
from sqlalchemy import select

from karung.cli.main import main
from karung.serve.db import make_engine, migrate, session_factory
from karung.serve.review import accounts
from karung.serve.review.claims import claim_batch
from karung.serve.review.decisions import NoEffects, Policy, decide
from karung.serve.review.export import parse_since, seller_split
from karung.serve.review.models import AuditEntry, ReviewItem, utcnow
from karung.vision.labels import LABELS

AddItems = Callable[..., list[int]]


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    engine = make_engine(sqlite_url)
    migrate(engine)  # every branch, as the CLI and the service do
    engine.dispose()
    return sqlite_url


def _decided(
    db_url: str, add_items: AddItems, labels: list[str], sellers: list[str] | None = None
) -> list[int]:
    engine = make_engine(db_url)
    factory = session_factory(engine)
    if sellers is None:
        ids = add_items(factory, len(labels))
    else:
        ids = [add_items(factory, 1, seller_id=seller)[0] for seller in sellers]
    with factory.begin() as s:
        claim_batch(s, "ana", limit=len(labels), lease_seconds=60)
    for item_id, label in zip(ids, labels, strict=True):
        with factory.begin() as s:
            decide(s, item_id, "ana", label, "visual", policy=Policy(0.0), effects=NoEffects())
    engine.dispose()
    return ids


def test_moderators_add_list_disable(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse battery\n"))
    assert main(["review", "moderators", "add", "Ana", "--password-stdin", "--db", db_url]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["review", "moderators", "add", "budi", "--password-stdin", "--db", db_url]) == 1
    assert "error: weak_password: " in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("another long one\n"))
    assert main(["review", "moderators", "add", "ana", "--password-stdin", "--db", db_url]) == 1
    assert "error: moderator_exists: " in capsys.readouterr().err
    assert main(["review", "moderators", "disable", "no spaces!", "--db", db_url]) == 1
    assert "error: invalid_moderator_name: " in capsys.readouterr().err
    assert main(["review", "moderators", "disable", "ana", "--db", db_url]) == 0
    assert main(["review", "moderators", "list", "--db", db_url]) == 0
    assert "ana" in capsys.readouterr().out
    engine = make_engine(db_url)
    with session_factory(engine)() as s:
        (mod,) = accounts.list_moderators(s)
        assert mod.name == "ana" and mod.disabled_at is not None
        assert accounts.verify_password("correct horse battery", mod.password_hash)
        assert "correct horse" not in mod.password_hash
        actions = s.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
        assert actions == ["moderator_add", "moderator_disable"]
    engine.dispose()


def test_export_manifest_is_what_the_trainer_reads(
    db_url: str, add_items: AddItems, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = ["bale", "sack", "garment", "other", "bale", "garment"]
    _decided(db_url, add_items, labels)
    out = tmp_path / "reviewed"
    assert main(["review", "export", "--out", str(out), "--db", db_url]) == 0
    assert "wrote 6 images" in capsys.readouterr().out
    with (out / "manifest.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["label"] for r in rows) == sorted(labels)
    for row in rows:
        assert row["split"] == seller_split(row["sender_id"], 0.2)
        with Image.open(out / row["file"]) as img:
            assert img.format == "JPEG" and img.size == (48, 48)
    data = pytest.importorskip("karung.training.data")
    samples = data.load_dir(out, LABELS)
    assert sorted(LABELS[s.label] for s in samples) == sorted(labels)
    assert {s.split for s in samples} <= {"train", "val"}
    assert {s.group for s in samples} == {r["sender_id"] for r in rows}


def test_export_since_and_latest_decision_wins(
    db_url: str, add_items: AddItems, tmp_path: Path
) -> None:
    ids = _decided(db_url, add_items, ["bale", "garment"])
    engine = make_engine(db_url)
    factory = session_factory(engine)
    with factory.begin() as s:  # make the first decision old
        s.get_one(ReviewItem, ids[0]).decided_at = utcnow() - timedelta(days=10)
    engine.dispose()
    out = tmp_path / "recent"
    since = (utcnow() - timedelta(days=1)).date().isoformat()
    assert main(["review", "export", "--out", str(out), "--since", since, "--db", db_url]) == 0
    with (out / "manifest.csv").open(newline="") as fh:
        assert [r["label"] for r in csv.DictReader(fh)] == ["garment"]
    assert parse_since("2026-05-01").tzinfo is not None
    with pytest.raises(ValueError):
        parse_since("yesterday")


def test_bad_export_options_are_reported_with_their_code(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "x")
    assert main(["review", "export", "--out", out, "--since", "yesterday", "--db", db_url]) == 1
    assert "error: invalid_export_option: not an ISO date" in capsys.readouterr().err


def test_stats_agreement_outbox(
    db_url: str, add_items: AddItems, capsys: pytest.CaptureFixture[str]
) -> None:
    _decided(db_url, add_items, ["bale"])
    assert main(["review", "stats", "--db", db_url]) == 0
    assert "decided  review_band  1" in capsys.readouterr().out
    assert main(["review", "agreement", "--db", db_url]) == 0
    assert main(["review", "outbox", "--requeue", "--db", db_url]) == 0
    assert "requeued 0" in capsys.readouterr().out


@pytest.mark.slow
def test_export_then_train_round_trip(
    db_url: str, add_items: AddItems, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Reviewed items -> ``karung review export`` -> ``karung train --data`` (default frozen
    recipe at 64 px: every reviewed photo is real, so the thresholds come from its negatives)."""
    pytest.importorskip("karung.training.trainer")
    pytest.importorskip("karung.cli.train")
    names = [f"seller-{i}" for i in range(50)]
    one_each = [next(n for n in names if seller_split(n, 0.5) == sp) for sp in ("train", "val")]
    labels = [*LABELS] * 4  # 16 items: every label in both splits
    _decided(db_url, add_items, labels, sellers=[one_each[i // 8] for i in range(16)])
    out = tmp_path / "reviewed"
    assert (
        main(["review", "export", "--out", str(out), "--val-fraction", "0.5", "--db", db_url]) == 0
    )
    with (out / "manifest.csv").open(newline="") as fh:
        splits = {r["split"] for r in csv.DictReader(fh)}
    assert splits == {"train", "val"}
    run = tmp_path / "run"
    args = [
        "train", "--data", str(out), "--out", str(run), "--input-size", "64", "--no-progress",
        "--threads", "1", "--seed", "0",
    ]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    assert (run / "model.pt").is_file()
    # ... and `karung evaluate --compare` puts the new model beside the old one on that set.
    pytest.importorskip("karung.training.evaluate_job")
    old = tmp_path / "old" / "model.pt"
    tiny_checkpoint(3, bn_var=1e-2).save(old)
    report = tmp_path / "report"
    evaluate = ["evaluate", "--model", str(run / "model.pt"), "--compare", str(old)]
    evaluate += ["--data", str(out), "--out", str(report), "--split", "val", "--no-progress"]
    capsys.readouterr()
    assert main([*evaluate, "--workers", "0"]) == 0, capsys.readouterr().err
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["images"] == 8 and len(metrics["models"]) == 2
