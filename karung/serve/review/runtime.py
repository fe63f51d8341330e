"""The review area's per-app state: settings parsed once, templates, effects, the outbox worker."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from fastapi import FastAPI
from fastapi.templating import Jinja2Templates

from karung.serve.review.decisions import Policy
from karung.serve.review.diverse import DiverseSampler
from karung.serve.review.effects import BankWriter, ReviewEffects
from karung.serve.review.outbox import OutboxWorker, WebhookConfig
from karung.serve.review.settings import ReviewSettings
from karung.serve.review.throttle import Backoff, LoginThrottle

HERE: Final = Path(__file__).resolve().parent
TEMPLATES_DIR: Final = HERE / "templates"
STATIC_DIR: Final = HERE / "static"


@dataclass
class ReviewRuntime:
    """Everything the review routes need besides the database, built once by ``install``."""

    settings: ReviewSettings
    policy: Policy
    templates: Jinja2Templates
    webhook: WebhookConfig | None
    worker: OutboxWorker | None = None
    # In the database: per (address, account) and per address, with backoff.
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    bank_writer: Any = field(default=None)  # resolved on first use (the bank opens late)
    diverse: DiverseSampler | None = None

    @classmethod
    def build(cls, settings: ReviewSettings) -> ReviewRuntime:
        """Parse the settings into the plain values the library functions take."""
        policy = Policy(
            double_review_share=settings.double_review_share,
            lease_seconds=settings.lease_seconds,
            undo_window_seconds=settings.undo_window_seconds,
            reason_codes=tuple(settings.reason_codes),
        )
        webhook = None
        if settings.webhook_url and settings.webhook_secret:
            webhook = WebhookConfig(
                url=settings.webhook_url,
                secret=settings.webhook_secret,
                max_attempts=settings.webhook_max_attempts,
                backoff_seconds=settings.webhook_backoff_seconds,
                backoff_max_seconds=settings.webhook_backoff_max_seconds,
                timeout_seconds=settings.webhook_timeout_seconds,
                poll_seconds=settings.outbox_poll_seconds,
            )
        templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
        base, cap = settings.login_backoff_seconds, settings.login_backoff_max_seconds
        throttle = LoginThrottle(
            per_account=Backoff(settings.login_free_attempts, base, cap),
            per_address=Backoff(settings.login_address_free_attempts, base, cap),
        )
        return cls(
            settings=settings,
            policy=policy,
            templates=templates,
            webhook=webhook,
            throttle=throttle,
            diverse=(
                DiverseSampler(settings.diverse_share, settings.diverse_distance)
                if settings.diverse_share > 0
                else None
            ),
        )

    def effects(self, app: FastAPI) -> ReviewEffects:
        """Effects bound to the app's current bank (the bank may be reopened at run time)."""
        return ReviewEffects(
            bank=self.bank(app),
            bank_name=self.settings.bank,
            webhook=self.webhook is not None,
        )

    def bank(self, app: FastAPI) -> BankWriter | None:
        """The bank confirmed items go to: the service's bank, or a store on its database."""
        if self.bank_writer is None:
            from karung.serve.review.bankbridge import bank_writer

            self.bank_writer = bank_writer(
                getattr(app.state, "bank", None), getattr(app.state, "engine", None)
            )
        writer: BankWriter | None = self.bank_writer
        return writer

    def after_commit(self, app: FastAPI) -> None:
        """Nudge the background jobs: deliver new events now, make new bank entries visible."""
        if self.worker is not None:
            self.worker.nudge()
        from karung.serve.review.bankbridge import refresh

        refresh(getattr(app.state, "bank", None))
