"""Moderator accounts: scrypt password hashes and server-side login sessions.

Moderators are people, not platforms: they never share the scoring service's API keys. A login
gives a random token that travels only in an HttpOnly cookie; the database keeps its SHA-256, so a
leaked database dump holds no usable session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from karung.serve.review.audit import record
from karung.serve.review.errors import (
    AuthenticationFailed,
    InvalidModeratorName,
    ModeratorExists,
    UnknownModerator,
    WeakPassword,
)
from karung.serve.review.models import Moderator, ModeratorSession, utcnow

MIN_PASSWORD_LENGTH: Final = 10
# scrypt cost: 16 MiB and ~50 ms per check; stored in the hash so it can be raised later.
SCRYPT_N: Final = 2**14
SCRYPT_R: Final = 8
SCRYPT_P: Final = 1
_NAME_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-@")


@dataclass(frozen=True)
class SessionUser:
    """Who a valid session belongs to, and the token that proves it."""

    moderator_id: int
    name: str
    token: str

    @property
    def csrf_token(self) -> str:
        """A per-session value the pages echo back on every state-changing request."""
        return hmac.new(self.token.encode(), b"karung-review-csrf", hashlib.sha256).hexdigest()


def hash_password(password: str, *, n: int = SCRYPT_N) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64), with a fresh random salt."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, n, SCRYPT_R, SCRYPT_P)
    return "$".join(("scrypt", str(n), str(SCRYPT_R), str(SCRYPT_P), _b64(salt), _b64(digest)))


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of ``password`` against a :func:`hash_password` string."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        want = base64.b64decode(digest)
        got = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(want, got)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=2**26, dklen=32
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# Checked against when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH: Final = hash_password("karung-dummy-password")


def normalise_name(name: str) -> str:
    """Lower-case, trimmed; only letters, digits and ``._-@`` (names show up in audit lines)."""
    clean = name.strip().lower()
    if not clean or len(clean) > 128 or not set(clean) <= _NAME_CHARS:
        raise InvalidModeratorName(f"invalid moderator name {name!r}: use 1-128 of a-z 0-9 . _ - @")
    return clean


def add_moderator(session: Session, name: str, password: str, *, actor: str = "cli") -> Moderator:
    """Create a moderator; the caller commits."""
    clean = normalise_name(name)
    _check_password(password)
    if session.scalar(select(Moderator.id).where(Moderator.name == clean)) is not None:
        raise ModeratorExists(f"moderator {clean!r} already exists")
    mod = Moderator(name=clean, password_hash=hash_password(password), created_at=utcnow())
    session.add(mod)
    session.flush()
    record(session, actor=actor, action="moderator_add", after={"moderator": clean})
    return mod


def set_password(session: Session, name: str, password: str, *, actor: str = "cli") -> None:
    """Replace a moderator's password and end all of their sessions; the caller commits."""
    _check_password(password)
    mod = _get(session, name)
    mod.password_hash = hash_password(password)
    _revoke_all(session, mod.id)
    record(session, actor=actor, action="moderator_password", after={"moderator": mod.name})


def set_disabled(session: Session, name: str, disabled: bool, *, actor: str = "cli") -> None:
    """Disable (ending all sessions) or re-enable a moderator; the caller commits."""
    mod = _get(session, name)
    before = {"moderator": mod.name, "disabled": mod.disabled_at is not None}
    mod.disabled_at = utcnow() if disabled else None
    if disabled:
        _revoke_all(session, mod.id)
    after = {"moderator": mod.name, "disabled": disabled}
    record(session, actor=actor, action="moderator_disable", before=before, after=after)


def list_moderators(session: Session) -> list[Moderator]:
    """Every moderator, by name."""
    return list(session.scalars(select(Moderator).order_by(Moderator.name)))


def login(session: Session, name: str, password: str, *, hours: float) -> SessionUser:
    """Check the credentials and open a session of ``hours``; the caller commits."""
    try:
        clean = normalise_name(name)
    except ValueError:
        clean = ""
    mod = session.scalar(select(Moderator).where(Moderator.name == clean)) if clean else None
    ok = verify_password(password, mod.password_hash if mod else _DUMMY_HASH)
    if mod is None or not ok or mod.disabled_at is not None:
        raise AuthenticationFailed("wrong name or password")
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        ModeratorSession(
            token_hash=_token_hash(token),
            moderator_id=mod.id,
            created_at=now,
            expires_at=now + timedelta(hours=hours),
        )
    )
    record(session, actor=mod.name, action="login")
    return SessionUser(mod.id, mod.name, token)


def resolve(session: Session, token: str, *, now: datetime | None = None) -> SessionUser:
    """The moderator behind a session token; raises :class:`AuthenticationFailed` otherwise."""
    now = now or utcnow()
    row = session.execute(
        select(Moderator.id, Moderator.name)
        .join(ModeratorSession, ModeratorSession.moderator_id == Moderator.id)
        .where(
            ModeratorSession.token_hash == _token_hash(token),
            ModeratorSession.revoked_at.is_(None),
            ModeratorSession.expires_at > now,
            Moderator.disabled_at.is_(None),
        )
    ).first()
    if row is None:
        raise AuthenticationFailed("not logged in or session expired")
    return SessionUser(int(row.id), str(row.name), token)


def logout(session: Session, token: str) -> None:
    """Revoke one session; the caller commits."""
    session.execute(
        update(ModeratorSession)
        .where(ModeratorSession.token_hash == _token_hash(token))
        .values(revoked_at=utcnow())
    )


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"password needs at least {MIN_PASSWORD_LENGTH} characters")


def _get(session: Session, name: str) -> Moderator:
    mod = session.scalar(select(Moderator).where(Moderator.name == normalise_name(name)))
    if mod is None:
        raise UnknownModerator(f"no moderator named {name!r}")
    return mod


def _revoke_all(session: Session, moderator_id: int) -> None:
    session.execute(
        update(ModeratorSession)
        .where(ModeratorSession.moderator_id == moderator_id, ModeratorSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
