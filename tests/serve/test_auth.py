"""API keys: hashed storage, scopes, revocation, the first admin key and the keys CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from karung.cli.main import main as cli
from karung.serve.auth.keys import (
    DuplicateKeyName,
    KeyNotFound,
    create_key,
    ensure_admin_key,
    hash_key,
    list_keys,
    revoke_key,
    verify_key,
)
from karung.serve.auth.models import ApiKey
from karung.serve.auth.scopes import UnknownScope, effective, parse_scopes
from karung.serve.db import make_engine, migrate, session_factory


@pytest.fixture
def sessions(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'keys.db'}")
    migrate(engine)
    yield session_factory(engine)
    engine.dispose()


def test_keys_are_stored_hashed_and_verified(sessions) -> None:  # type: ignore[no-untyped-def]
    with sessions() as s:
        info, secret = create_key(s, "shop", "score,bank:write")
        s.commit()
        stored = s.scalar(select(ApiKey).where(ApiKey.id == info.id))
        assert stored is not None
        assert secret not in (stored.key_hash, stored.key_id, stored.scopes)
        assert stored.key_hash == hash_key(secret)
        principal = verify_key(s, secret)
        assert principal is not None and principal.name == "shop"
        assert principal.allows("score") and principal.allows("bank:read")
        assert not principal.allows("admin") and not principal.allows("review")
        assert verify_key(s, secret + "x") is None
        with pytest.raises(DuplicateKeyName):
            create_key(s, "shop", "score")
        revoke_key(s, "shop")
        s.commit()
        assert verify_key(s, secret) is None
        with pytest.raises(KeyNotFound):
            revoke_key(s, "nobody")


def test_first_admin_key_only_on_an_empty_database(sessions) -> None:  # type: ignore[no-untyped-def]
    with sessions() as s:
        first = ensure_admin_key(s)
        s.commit()
        assert first is not None and first.startswith("krg_")
        assert ensure_admin_key(s) is None
        principal = verify_key(s, first)
        assert principal is not None and principal.allows("review") and principal.allows("score")
        assert [k.name for k in list_keys(s)] == ["admin"]


def test_scopes() -> None:
    assert parse_scopes("score, bank:write") == {"score", "bank:write"}
    assert effective({"admin"}) >= {"score", "bank:read", "bank:write", "review", "admin"}
    with pytest.raises(UnknownScope):
        parse_scopes("score,root")
    with pytest.raises(UnknownScope):
        parse_scopes("")


def test_keys_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    assert (
        cli(["keys", "--db", db, "create", "--name", "p1", "--scopes", "score,bank:write,review"])
        == 0
    )
    secret = capsys.readouterr().out.strip().splitlines()[-1]
    assert secret.startswith("krg_")
    assert cli(["keys", "--db", db, "list"]) == 0
    listing = capsys.readouterr().out
    assert "p1" in listing and "active" in listing and secret not in listing
    assert cli(["keys", "--db", db, "revoke", "p1"]) == 0
    assert cli(["keys", "--db", db, "list"]) == 0
    assert "revoked" in capsys.readouterr().out
    assert cli(["keys", "--db", db, "create", "--name", "p2", "--scopes", "root"]) == 1
