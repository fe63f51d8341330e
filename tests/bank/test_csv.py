"""CSV exchange of hash lists: round trip between banks, malformed rows named by line."""

from __future__ import annotations

import io

import pytest
from hashing.hashkit import png, scene
from sqlalchemy import Engine

from karung.serve.bank.csv_io import COLUMNS, read_csv
from karung.serve.bank.errors import MalformedCsvRow
from karung.serve.bank.service import BankService
from karung.serve.db import make_engine, migrate
from karung.vision.hashing import compute_hashes

PDQ = "f92d687468d92e64b589b704890da7bc13b4dda956b4dc236b468a96b69399ca"
PHASH = "ab2964b4b5e6964a"
SHA = "e" * 64


def test_export_import_round_trip(service: BankService, tmp_path: object) -> None:
    from PIL import ImageOps

    framed = ImageOps.expand(scene(1), 30, fill="black")  # gets trimmed hashes too
    service.add_image(
        png(scene(0)),
        bank="stolen",
        seller_id="S1",
        listing_id="L,1",
        source_url="https://x.test/a?b=1",
        note='line "one"\nline two',
    )
    service.add_image(png(framed), bank="partner", added_by="mod")
    out = io.StringIO()
    assert service.export_csv(out) == 2
    text = out.getvalue()
    assert text.splitlines()[0] == ",".join(COLUMNS)
    other = BankService(_fresh_engine(tmp_path))
    report = other.import_csv(io.StringIO(text))
    assert (report.added, report.existing, report.errors) == (2, 0, [])

    def strip(e: dict[str, object]) -> dict[str, object]:
        return {k: v for k, v in e.items() if k != "id"}

    assert [strip(e.to_dict()) for e in other.list_entries()] == [
        strip(e.to_dict()) for e in service.list_entries()
    ]
    assert other.list_entries()[1].trim_pdq is not None
    assert len(other.list_entries()[0].crops) == 1  # the centre crop travels too
    assert {e.hash_version for e in other.list_entries()} == {2}
    again = other.import_csv(io.StringIO(text))
    assert (again.added, again.existing) == (0, 2)
    # The imported hashes match re-uploads without any image having been shared.
    assert [m.bank for m in other.match(scene(0).resize((200, 150)))] == ["stolen"]
    assert [m.bank for m in other.match(scene(0).crop((32, 24, 320, 240)))] == ["stolen"]


def test_malformed_crop_hashes_name_the_line() -> None:
    text = f"bank,pdq,pdq_quality,crop_hashes\nb,{PDQ},90,{PDQ}:{PHASH}\nb,{PDQ},90,{PDQ}-{PHASH}\n"
    good, bad = list(read_csv(io.StringIO(text)))
    assert not isinstance(good, MalformedCsvRow) and len(good.crops) == 1
    assert isinstance(bad, MalformedCsvRow) and "line 3" in str(bad) and "crop" in str(bad)


def _fresh_engine(tmp_path: object) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path}/other.db")
    migrate(engine)
    return engine


def test_export_of_one_bank(service: BankService) -> None:
    service.add_image(png(scene(0)), bank="a")
    service.add_image(png(scene(1)), bank="b")
    out = io.StringIO()
    assert service.export_csv(out, bank="b") == 1
    assert out.getvalue().splitlines()[1].startswith("b,")


def test_malformed_rows_are_reported_by_line_and_good_rows_load(service: BankService) -> None:
    rows = [
        "bank,sha256,pdq,pdq_quality,phash,seller_id,added_at",
        f"good,{SHA},{PDQ},100,{PHASH},S1,2026-01-02T03:04:05+00:00",  # line 2
        f"good,,{PDQ[:-1]},100,,S2,",  # line 3: short PDQ
        f"good,,,,{PHASH[:-2]}zz,S3,",  # line 4: non-hex pHash
        f"good,,{PDQ},abc,,S4,",  # line 5: quality not a number
        f"good,,{PDQ},100,,S5,yesterday",  # line 6: bad time
        f"good,{'x' * 64},,,{PHASH},S6,",  # line 7: bad sha256
        ",,,,,S7,",  # line 8: no bank, no hash
        f"good,,,,{PHASH},S8,,surplus",  # line 9: too many fields
        f"good,,{PDQ},,,S9,",  # line 10: PDQ without quality
        f"good,,,,{PHASH},S10,2026-01-02",  # line 11: good, naive date taken as UTC
    ]
    report = service.import_csv(io.StringIO("\n".join(rows) + "\n"))
    assert (report.added, report.existing) == (2, 0)
    by_line = {e.line: str(e) for e in report.errors}
    assert sorted(by_line) == [3, 4, 5, 6, 7, 8, 9, 10]
    assert "64 hex digits, got 63" in by_line[3]
    assert "non-hex" in by_line[4]
    assert "pdq_quality must be an integer" in by_line[5]
    assert "ISO 8601" in by_line[6]
    assert "sha256 must be 64" in by_line[7]
    assert "no bank" in by_line[8]
    assert "more field(s) than the header" in by_line[9]
    assert "quality must be an integer in 0..100" in by_line[10]
    assert all(
        e.code == "malformed_csv_row" and str(e).startswith(f"line {e.line}: ")
        for e in report.errors
    )
    entries = service.list_entries()
    assert [e.seller_id for e in entries] == ["S1", "S10"]
    assert entries[0].added_at.isoformat() == "2026-01-02T03:04:05+00:00"
    assert entries[1].added_at.isoformat() == "2026-01-02T00:00:00+00:00"


def test_default_bank_fills_empty_bank_cells(service: BankService) -> None:
    text = f"pdq,pdq_quality\n{PDQ},90\n"
    assert service.import_csv(io.StringIO(text), bank="partner").added == 1
    assert service.list_entries()[0].bank == "partner"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("bank,pdq,colour\n", "unknown column"),
        ("bank,seller_id\n", "at least one of sha256, pdq, phash"),
    ],
)
def test_bad_headers_are_rejected_on_line_1(text: str, message: str) -> None:
    with pytest.raises(MalformedCsvRow, match=message) as info:
        list(read_csv(io.StringIO(text)))
    assert info.value.line == 1


def test_hashes_written_match_the_computed_ones(service: BankService) -> None:
    service.add_image(png(scene(2)), bank="stolen")
    out = io.StringIO()
    service.export_csv(out)
    row = dict(zip(COLUMNS, out.getvalue().splitlines()[1].split(","), strict=True))
    hashes = compute_hashes(scene(2))
    assert row["pdq"] == hashes.pdq.hex() and row["phash"] == hashes.phash.hex()
    assert row["pdq_quality"] == str(hashes.pdq_quality)
