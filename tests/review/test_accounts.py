"""Accounts: password hashing, sessions, and the login throttle."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from karung.serve.review import accounts
from karung.serve.review.errors import AuthenticationFailed, ModeratorExists, WeakPassword
from karung.serve.review.models import utcnow
from karung.serve.review.throttle import Backoff, LoginThrottle

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


def test_throttle_backs_off_per_address_and_account(any_sessions: sessionmaker[Session]) -> None:
    t = LoginThrottle(per_account=Backoff(3), per_address=Backoff(100))
    for i in range(3):
        assert t.reserve(any_sessions, "10.0.0.1", "ana", now=100.0 + i) == 0.0
    # The third attempt earned a 1 s wait, the next one (if it fails) 2 s, then 4 s.
    assert t.reserve(any_sessions, "10.0.0.1", "ana", now=102.5) == pytest.approx(0.5)
    assert t.reserve(any_sessions, "10.0.0.1", "ana", now=103.0) == 0.0
    assert t.reserve(any_sessions, "10.0.0.1", "ana", now=104.0) == pytest.approx(1.0)
    # Another address (the moderator herself) and another account are not affected.
    assert t.reserve(any_sessions, "10.0.0.2", "ana", now=104.0) == 0.0
    assert t.reserve(any_sessions, "10.0.0.1", "budi", now=104.0) == 0.0
    t.succeeded(any_sessions, "10.0.0.1", "ana")
    assert t.reserve(any_sessions, "10.0.0.1", "ana", now=104.0) == 0.0


def test_parallel_guesses_get_at_most_the_free_checks(any_sessions: sessionmaker[Session]) -> None:
    """Counting happens before the check, atomically: 40 threads, 5 free attempts, 5 checks."""
    t = LoginThrottle(per_account=Backoff(5), per_address=Backoff(1000))
    with ThreadPoolExecutor(8) as pool:  # one instant: no backoff runs out meanwhile
        waits = list(
            pool.map(lambda _: t.reserve(any_sessions, "10.0.0.9", "ana", now=500.0), range(40))
        )
    assert sum(1 for w in waits if w == 0.0) == 5


def test_backoff_doubles_up_to_its_cap() -> None:
    b = Backoff(free=2, base_seconds=1.0, max_seconds=5.0)
    assert [b.delay(n) for n in range(6)] == [0.0, 0.0, 1.0, 2.0, 4.0, 5.0]
