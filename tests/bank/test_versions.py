"""Hash versions: version-1 entries keep matching (reference PDQ only), ``karung bank rehash``
moves them to version 2 from the original photos, and ThreatExchange-style lists round-trip."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import replace
from pathlib import Path

import pytest
from hashing.hashkit import jpeg, png, scene
from PIL import Image, ImageOps

from karung.cli.main import main
from karung.serve.bank.service import BankService
from karung.serve.bank.store import NewEntry
from karung.serve.bank.te_csv import COLUMNS as TE_COLUMNS
from karung.serve.db import make_engine, migrate
from karung.vision.hashing import HASH_VERSION, HashValue, compute_hashes

SMALL = (140, 180)  # a listing thumbnail: where the reference PDQ's mirror shortcut failed


def _legacy_entry(image: Image.Image, sha256: str | None, **meta: object) -> NewEntry:
    """An entry as karung banked it before version 2: reference PDQ, no usable crops."""
    hashes = compute_hashes(image)
    assert hashes.reference is not None
    return NewEntry(
        bank="old",
        sha256=sha256,
        pdq=hashes.reference[0][0],
        pdq_quality=hashes.reference[1],
        phash=hashes.phash,
        hash_version=1,
        **meta,  # type: ignore[arg-type]
    )


def test_versions_are_never_compared(service: BankService) -> None:
    image = scene(0)
    hashes = compute_hashes(image)
    assert hashes.reference is not None
    # A version-1 entry holding, mislabelled, the version-2 hash of the image.
    service.store.add(
        [NewEntry(bank="old", sha256=None, pdq=hashes.pdq, pdq_quality=100, hash_version=1)]
    )
    service.refresh_if_changed()
    far = tuple(HashValue("pdq", bytes(32 - i) + b"\xff" * i) for i in range(8))
    blind = replace(hashes, reference=(far, 100), partials=(), partial_specs=())
    assert service.match_hashes(blind) == []  # its version-2 PDQ is not compared with it
    own = replace(blind, reference=((hashes.pdq,) * 8, 100))
    assert [m.kind for m in service.match_hashes(own)] == ["pdq"]


def test_version_1_entries_match_through_reference_hashes(service: BankService) -> None:
    service.store.add([_legacy_entry(scene(2), None, listing_id="L-old")])
    service.refresh_if_changed()
    matches = service.match(scene(2).resize((240, 180)))
    assert [(m.listing_id, m.kind) for m in matches] == [("L-old", "pdq")]


def test_rehash_moves_entries_to_version_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    originals = tmp_path / "originals"
    originals.mkdir()
    data = png(scene(4, *SMALL))
    (originals / "thumb.png").write_bytes(data)
    (originals / "unrelated.png").write_bytes(png(scene(5)))
    (originals / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    url = f"sqlite:///{tmp_path}/bank.db"
    engine = make_engine(url)
    migrate(engine)
    service = BankService(engine)
    decoded = Image.open(io.BytesIO(data)).convert("RGB")
    sha = hashlib.sha256(data).hexdigest()
    service.store.add([_legacy_entry(decoded, sha, seller_id="S1", note="kept")])
    service.store.add([_legacy_entry(scene(6), None)])  # no sha256: cannot be re-hashed
    before = service.list_entries()[0]
    mirrored = jpeg(ImageOps.mirror(scene(4, *SMALL)))
    assert service.match_bytes(mirrored) == []  # the reference mirror shortcut misses it

    code = main(["bank", "rehash", str(originals), "--db", url])
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert code == 2  # the broken file is reported, the rest is done
    summary = lines[-1]
    assert summary["files"] == 3 and summary["rehashed"] == 1 and summary["errors"] == 1
    assert summary["entries_by_hash_version"] == {"1": 1, "2": 1}
    after = BankService(engine).list_entries()[0]
    assert (after.id, after.seller_id, after.note, after.sha256) == (
        before.id,
        "S1",
        "kept",
        sha,
    )
    assert after.hash_version == HASH_VERSION and len(after.crops) == 1
    assert after.pdq == compute_hashes(decoded).pdq
    service.refresh_if_changed()  # a replica follows the re-hash as a delta
    assert [m.entry_id for m in service.match_bytes(mirrored)] == [after.id]
    assert main(["bank", "rehash", str(originals / "thumb.png"), "--db", url]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["rehashed"] == 0
    engine.dispose()


def test_threatexchange_csv_round_trip(service: BankService, tmp_path: Path) -> None:
    service.add_image(png(scene(0)), bank="stolen", seller_id="S1", listing_id="L,1", note="a")
    service.store.add([_legacy_entry(scene(3), None, listing_id="L-old")])
    out = io.StringIO()
    assert service.export_csv(out, fmt="threatexchange") == 2
    text = out.getvalue()
    assert text.splitlines()[0] == ",".join(TE_COLUMNS)
    assert text.splitlines()[0].startswith("signal_type,signal_str,")
    engine = make_engine(f"sqlite:///{tmp_path}/other.db")
    migrate(engine)
    other = BankService(engine)
    report = other.import_csv(io.StringIO(text), fmt="threatexchange")
    assert (report.added, report.existing, report.errors) == (2, 0, [])
    keys = ("bank", "sha256", "pdq", "pdq_quality", "phash", "listing_id", "seller_id", "note")
    mine = [{k: e.to_dict()[k] for k in (*keys, "hash_version")} for e in service.list_entries()]
    theirs = [{k: e.to_dict()[k] for k in (*keys, "hash_version")} for e in other.list_entries()]
    assert theirs == mine
    assert [m.listing_id for m in other.match(scene(0).resize((200, 150)))] == ["L,1"]
    assert [m.listing_id for m in other.match(scene(3).resize((200, 150)))] == ["L-old"]
    engine.dispose()


def test_foreign_threatexchange_list(service: BankService) -> None:
    """Another tool's list: two columns, reference PDQ, unknown quality; bad rows named."""
    hashes = compute_hashes(scene(7))
    assert hashes.reference is not None
    ref = hashes.reference[0][0].hex()
    text = f"signal_type,signal_str\npdq,{ref}\nmd5,0123\npdq,{ref[:-1]}\n"
    report = service.import_csv(io.StringIO(text), bank="partner", fmt="threatexchange")
    assert report.added == 1
    assert [(e.line, "signal_type" in str(e)) for e in report.errors] == [(3, True), (4, False)]
    [entry] = service.list_entries()
    assert (entry.hash_version, entry.pdq_quality) == (1, 50)
    assert [m.kind for m in service.match(ImageOps.mirror(scene(7)))] == ["pdq"]
