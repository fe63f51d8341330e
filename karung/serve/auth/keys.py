"""Creating, listing, revoking and verifying API keys (synchronous, on a SQLAlchemy session)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from karung.errors import KarungError
from karung.serve.auth.models import ApiKey, utcnow
from karung.serve.auth.scopes import ADMIN, effective, format_scopes, parse_scopes

PREFIX: Final = "krg_"
MIN_KEY_LENGTH: Final = 16


class KeyManagementError(KarungError, code="key_error", status=422):
    """Base of key management errors."""


class DuplicateKeyName(KeyManagementError, code="duplicate_key_name"):
    """A live or revoked key already has this name."""


class KeyNotFound(KeyManagementError, code="key_not_found"):
    """No key with this name or id."""


class InvalidKey(KeyManagementError, code="invalid_key"):
    """A supplied key is too short to be a secret."""


@dataclass(frozen=True)
class Principal:
    """The authenticated client of a request."""

    key_pk: int
    name: str
    scopes: frozenset[str]
    block_threshold: float | None = None
    review_threshold: float | None = None

    def allows(self, scope: str) -> bool:
        """Whether the key holds ``scope`` directly or through an implying scope."""
        return scope in effective(self.scopes)


@dataclass(frozen=True)
class KeyInfo:
    """What listings show about a key (never the secret)."""

    id: int
    name: str
    key_id: str
    scopes: str
    created_at: datetime
    revoked_at: datetime | None
    block_threshold: float | None
    review_threshold: float | None

    @classmethod
    def of(cls, row: ApiKey) -> KeyInfo:
        """Copy the public columns of ``row``."""
        return cls(
            row.id,
            row.name,
            row.key_id,
            row.scopes,
            row.created_at,
            row.revoked_at,
            row.block_threshold,
            row.review_threshold,
        )


def generate_key() -> tuple[str, str]:
    """A new random key and its clear id: ``(krg_<id>_<secret>, <id>)``."""
    key_id = secrets.token_hex(4)
    return f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}", key_id


def hash_key(key: str) -> str:
    """The stored form of a key: SHA-256 hex (keys are 256-bit random, no stretching needed)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_key(
    session: Session,
    name: str,
    scopes: str | frozenset[str],
    *,
    block_threshold: float | None = None,
    review_threshold: float | None = None,
    key: str | None = None,
) -> tuple[KeyInfo, str]:
    """Store a new key and return its info and the plaintext (shown once). Caller commits.

    ``key`` lets an operator supply the secret (e.g. ``KARUNG_ADMIN_KEY``); otherwise one is
    generated.
    """
    scope_set = parse_scopes(scopes)
    name = name.strip()
    if not name:
        raise InvalidKey("a key needs a name")
    if session.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None:
        raise DuplicateKeyName(f"a key named {name!r} already exists")
    if key is None:
        key, key_id = generate_key()
    else:
        if len(key) < MIN_KEY_LENGTH:
            raise InvalidKey(f"a supplied key needs at least {MIN_KEY_LENGTH} characters")
        key_id = hash_key(key)[:8]
    row = ApiKey(
        name=name,
        key_id=key_id,
        key_hash=hash_key(key),
        scopes=format_scopes(scope_set),
        block_threshold=block_threshold,
        review_threshold=review_threshold,
    )
    session.add(row)
    session.flush()
    return KeyInfo.of(row), key


def list_keys(session: Session) -> list[KeyInfo]:
    """Every key, oldest first."""
    return [KeyInfo.of(r) for r in session.scalars(select(ApiKey).order_by(ApiKey.id))]


def revoke_key(session: Session, ident: str) -> KeyInfo:
    """Revoke the key whose name, clear id or numeric id is ``ident``. Caller commits."""
    conditions = [ApiKey.name == ident, ApiKey.key_id == ident]
    if ident.isdigit():
        conditions.append(ApiKey.id == int(ident))
    row = session.scalar(select(ApiKey).where(or_(*conditions)))
    if row is None:
        raise KeyNotFound(f"no key {ident!r}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
    return KeyInfo.of(row)


def verify_key(session: Session, key: str) -> Principal | None:
    """The principal of a live key, or ``None`` for unknown and revoked keys."""
    row = session.scalar(
        select(ApiKey).where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None))
    )
    if row is None:
        return None
    return Principal(
        row.id, row.name, parse_scopes(row.scopes), row.block_threshold, row.review_threshold
    )


def ensure_admin_key(session: Session, key: str | None = None) -> str | None:
    """On a database without keys, create an ``admin`` key. Caller commits.

    Returns the plaintext when one was generated (so the caller prints it once), ``None`` when
    keys already exist or the operator supplied ``key``.
    """
    if session.scalar(select(func.count()).select_from(ApiKey)):
        return None
    _, plaintext = create_key(session, "admin", ADMIN, key=key)
    return None if key is not None else plaintext
