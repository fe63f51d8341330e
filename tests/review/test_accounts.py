"""Accounts: password hashing, sessions, and the login throttle."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from karung.serve.review import accounts
from karung.serve.review.errors import AuthenticationFailed, ModeratorExists, WeakPassword
from karung.serve.review.models import utcnow
from karung.serve.review.throttle import LoginThrottle

PW = "a long enough password"


def test_hash_is_salted_and_verifies() -> None:
    a, b = accounts.hash_password(PW), accounts.hash_password(PW)
    assert a != b and a.startswith("scrypt$16384$8$1$")
    assert accounts.verify_password(PW, a) and accounts.verify_password(PW, b)
    assert not accounts.verify_password(PW + "!", a)
    assert not accounts.verify_password(PW, "garbage")
    assert not accounts.verify_password(PW, "bcrypt$1$2$3$4$5")


def test_sessions_expire_and_end_on_password_change(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        accounts.add_moderator(s, "  Ana ", PW)
        with pytest.raises(ModeratorExists):
            accounts.add_moderator(s, "ana", PW)
        with pytest.raises(WeakPassword):
            accounts.add_moderator(s, "budi", "short")
        with pytest.raises(ValueError):
            accounts.add_moderator(s, "bad name!", PW)
    with sessions.begin() as s:
        user = accounts.login(s, "ANA", PW, hours=1)
        assert user.name == "ana" and len(user.csrf_token) == 64
        with pytest.raises(AuthenticationFailed):
            accounts.login(s, "ana", "wrong password", hours=1)
    with sessions() as s:
        assert accounts.resolve(s, user.token).name == "ana"
        with pytest.raises(AuthenticationFailed):
            accounts.resolve(s, user.token, now=utcnow() + timedelta(hours=2))
        with pytest.raises(AuthenticationFailed):
            accounts.resolve(s, "not-a-token")
    with sessions.begin() as s:
        accounts.set_password(s, "ana", "another long password")
    with sessions() as s, pytest.raises(AuthenticationFailed):
        accounts.resolve(s, user.token)
    with sessions.begin() as s:
        user = accounts.login(s, "ana", "another long password", hours=1)
        accounts.set_disabled(s, "ana", True)
    with sessions() as s, pytest.raises(AuthenticationFailed):
        accounts.resolve(s, user.token)
    with sessions.begin() as s, pytest.raises(AuthenticationFailed):
        accounts.login(s, "ana", "another long password", hours=1)


def test_throttle_window() -> None:
    t = LoginThrottle(max_failures=3, window_seconds=60)
    for i in range(3):
        assert not t.blocked("ana", now=100.0 + i)
        t.failed("ana", now=100.0 + i)
    assert t.blocked("ana", now=103.0)
    assert not t.blocked("budi", now=103.0)
    assert not t.blocked("ana", now=161.5)  # the first failures left the window
    t.failed("ana", now=170.0)
    t.succeeded("ana")
    assert not t.blocked("ana", now=171.0)
