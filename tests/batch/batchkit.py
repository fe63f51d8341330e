"""Helpers of the backfill tests: generated photos and a database with one banked photo."""

from __future__ import annotations

from pathlib import Path

from imagegen import encode, textured
from serve.servekit import jpeg
from sqlalchemy import Engine

from karung.serve.bank.service import BankService
from karung.serve.db import make_engine, migrate

BANKED_SEED = 40  # /img/40.jpg, banked under seller S-OLD before the backfill runs


def photo(seed: int, width: int = 96, height: int = 72) -> bytes:
    """A generated JPEG (the same seed gives the same bytes)."""
    return encode(textured(width, height, seed), "JPEG", quality=85)


def bank_db(tmp_path: Path) -> tuple[str, Engine]:
    """A migrated SQLite database whose bank ``stolen`` holds photo :data:`BANKED_SEED`."""
    url = f"sqlite:///{tmp_path / 'karung.db'}"
    engine = make_engine(url)
    migrate(engine)
    BankService(engine, load=False).add_image(
        jpeg(BANKED_SEED), bank="stolen", seller_id="S-OLD", listing_id="L-OLD"
    )
    return url, engine
