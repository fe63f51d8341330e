"""Typed FastAPI dependencies: settings, stores, the model, the scorer and authentication.

Routers declare what they need with these ``Annotated`` aliases, e.g.
``principal: ScoreScope`` or ``bank: BankDep``; nothing reads ``app.state`` directly.
The review area uses :func:`require_scope` (or :data:`ReviewScope`) the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from karung.serve.auth import scopes
from karung.serve.auth.authenticator import Authenticator
from karung.serve.auth.keys import Principal
from karung.serve.bank.service import BankService
from karung.serve.errors import BankUnavailable, Forbidden, ModelUnavailable, Unauthorized
from karung.serve.limits import key_from_headers
from karung.serve.metrics import Metrics
from karung.serve.runtime import ModelHolder
from karung.serve.scoring import Scorer
from karung.serve.settings import Settings
from karung.vision.classifier import Classifier


def get_settings(request: Request) -> Settings:
    """The service settings."""
    settings: Settings = request.app.state.settings
    return settings


def get_engine(request: Request) -> Engine:
    """The database engine."""
    engine: Engine = request.app.state.engine
    return engine


def get_session(request: Request) -> Iterator[Session]:
    """A session for this request, closed afterwards (commit explicitly)."""
    sessions: sessionmaker[Session] = request.app.state.sessions
    with sessions() as session:
        yield session


def get_sessions(request: Request) -> sessionmaker[Session]:
    """The session factory, for work that opens its own sessions (in a worker thread)."""
    sessions: sessionmaker[Session] = request.app.state.sessions
    return sessions


def get_models(request: Request) -> ModelHolder:
    """The model holder (may hold no model)."""
    models: ModelHolder = request.app.state.models
    return models


def get_classifier(models: Annotated[ModelHolder, Depends(get_models)]) -> Classifier:
    """The current model, captured once for the whole request; 503 when none is loaded."""
    current = models.current
    if current is None:
        raise ModelUnavailable(f"no model is loaded ({models.error or 'loading'})")
    return current


def get_bank(request: Request) -> BankService:
    """The hash bank service; 503 when it could not be opened."""
    bank: BankService | None = getattr(request.app.state, "bank", None)
    if bank is None:
        raise BankUnavailable("the hash bank is not available")
    return bank


def get_metrics(request: Request) -> Metrics:
    """The app's metrics."""
    metrics: Metrics = request.app.state.metrics
    return metrics


def get_scorer(request: Request) -> Scorer:
    """The scoring pipeline."""
    scorer: Scorer = request.app.state.scorer
    return scorer


def get_authenticator(request: Request) -> Authenticator:
    """The API key verifier."""
    auth: Authenticator = request.app.state.auth
    return auth


def presented_key(request: Request) -> str | None:
    """The key from ``Authorization: Bearer <key>`` or ``X-API-Key``."""
    return key_from_headers(request.headers.get)


async def authenticate(request: Request) -> Principal:
    """Resolve the request's API key to a :class:`Principal`; 401 when missing or unknown."""
    key = presented_key(request)
    if key is None:
        raise Unauthorized("an API key is required (Authorization: Bearer <key>)")
    auth = get_authenticator(request)
    principal = auth.cached(key) or await run_in_threadpool(auth.verify, key)
    if principal is None:
        raise Unauthorized("unknown or revoked API key")
    request.state.key_name = principal.name  # the access log shows who, never the key
    return principal


def require_scope(scope: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency that authenticates and demands ``scope`` (403 otherwise)."""
    if scope not in scopes.SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    async def dependency(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if not principal.allows(scope):
            raise Forbidden(f"this key lacks the {scope!r} scope")
        return principal

    return dependency


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
SessionDep = Annotated[Session, Depends(get_session)]
SessionsDep = Annotated[sessionmaker[Session], Depends(get_sessions)]
ModelsDep = Annotated[ModelHolder, Depends(get_models)]
ClassifierDep = Annotated[Classifier, Depends(get_classifier)]
BankDep = Annotated[BankService, Depends(get_bank)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
ScorerDep = Annotated[Scorer, Depends(get_scorer)]
AuthenticatorDep = Annotated[Authenticator, Depends(get_authenticator)]
ScoreScope = Annotated[Principal, Depends(require_scope(scopes.SCORE))]
BankReadScope = Annotated[Principal, Depends(require_scope(scopes.BANK_READ))]
BankWriteScope = Annotated[Principal, Depends(require_scope(scopes.BANK_WRITE))]
ReviewScope = Annotated[Principal, Depends(require_scope(scopes.REVIEW))]
AdminScope = Annotated[Principal, Depends(require_scope(scopes.ADMIN))]
