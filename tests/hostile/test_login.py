"""Password guessing: atomic, database-backed, per address+account (issue 16 point 7)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from serve.servekit import LiveService

from karung.serve.review import accounts
from karung.serve.settings import Settings

PASSWORD = "a long enough password"


def _with_moderator(live: LiveService) -> LiveService:
    with live.app.state.sessions.begin() as session:
        accounts.add_moderator(session, "ana", PASSWORD)
    return live


def _login(live: LiveService, password: str, xff: str | None = None) -> int:
    headers = {"X-Forwarded-For": xff} if xff else {}
    data = {"name": "ana", "password": password}
    r = httpx.post(f"{live.base_url}/review/login", data=data, headers=headers, timeout=60)
    return r.status_code


@pytest.mark.slow
def test_parallel_guesses_get_at_most_ten_password_checks(
    make_service: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A long first wait, so a slow machine cannot let a second round in during the test.
    monkeypatch.setenv("KARUNG_REVIEW_LOGIN_BACKOFF_SECONDS", "300")
    live = _with_moderator(make_service())
    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(lambda _: _login(live, "wrong password!!"), range(40)))
    assert codes.count(401) == 10  # the rest never reached scrypt
    assert codes.count(429) == 30


def test_forwarded_for_is_ignored_by_default(make_service: Any) -> None:
    live = _with_moderator(make_service())
    codes = [_login(live, "wrong password!!", xff=f"10.0.0.{i}") for i in range(11)]
    assert codes[:10] == [401] * 10 and codes[10] == 429  # one peer, one counter


def test_a_stranger_cannot_lock_the_moderator_out(make_service: Any) -> None:
    live = _with_moderator(make_service(trusted_proxies=("127.0.0.1",)))
    stranger = [_login(live, "wrong password!!", xff="203.0.113.9") for _ in range(11)]
    assert stranger[-1] == 429
    assert _login(live, PASSWORD, xff="198.51.100.7") == 303  # her own address: signed in


def test_trusted_proxies_setting_parses_and_rejects_junk() -> None:
    assert Settings(trusted_proxies="10.0.0.1, 10.1.0.0/16").trusted_proxies == (  # type: ignore[arg-type]
        "10.0.0.1",
        "10.1.0.0/16",
    )
    with pytest.raises(ValueError):
        Settings(trusted_proxies="not-an-address")  # type: ignore[arg-type]
    assert Settings().trusted_proxies == ()
