"""Settings of the review area, read once from ``KARUNG_REVIEW_*`` environment variables."""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_REASON_CODES: Final = (
    "visual",  # clear from the photo itself
    "bank_match",  # same photo as a known-bad one
    "listing_text",  # the title or description says so
    "seller_history",  # the seller's other listings say so
    "unclear",  # best guess, low confidence
)


class ReviewSettings(BaseSettings):
    """Queue, moderation and webhook knobs (env prefix ``KARUNG_REVIEW_``)."""

    model_config = SettingsConfigDict(env_prefix="KARUNG_REVIEW_", frozen=True, extra="ignore")

    bank: str = Field(
        default="confirmed", min_length=1, description="bank that confirmed bales join"
    )
    double_review_share: float = Field(default=0.05, ge=0.0, le=1.0)
    lease_seconds: int = Field(default=300, ge=5)
    claim_batch: int = Field(default=12, ge=1, le=100)
    # Diverse sampling (karung.serve.review.diverse): share of unqueued photos checked for
    # novelty, and how far (RMS of a 4x4 colour grid) from every known photo counts as novel.
    diverse_share: float = Field(default=0.02, ge=0.0, le=1.0)
    diverse_distance: float = Field(default=0.1, ge=0.0, le=1.0)
    diverse_refresh_seconds: float = Field(default=30.0, gt=0)
    undo_window_seconds: int = Field(default=900, ge=0)
    session_hours: float = Field(default=12.0, gt=0)
    cookie_secure: bool = False
    reason_codes: Annotated[tuple[str, ...], NoDecode] = Field(
        default=DEFAULT_REASON_CODES, description="comma-separated; the first is the default"
    )
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_max_attempts: int = Field(default=12, ge=1)
    webhook_backoff_seconds: float = Field(default=2.0, gt=0)
    webhook_backoff_max_seconds: float = Field(default=3600.0, gt=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    outbox_poll_seconds: float = Field(default=2.0, gt=0)
    # Login throttle (see karung.serve.review.throttle): free attempts, then doubling waits.
    login_free_attempts: int = Field(default=10, ge=1)
    login_address_free_attempts: int = Field(default=50, ge=1)
    login_backoff_seconds: float = Field(default=1.0, gt=0)
    login_backoff_max_seconds: float = Field(default=900.0, gt=0)

    @field_validator("reason_codes", mode="before")
    @classmethod
    def _split_codes(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @model_validator(mode="after")
    def _check(self) -> ReviewSettings:
        if self.webhook_url and not self.webhook_secret:
            raise ValueError("KARUNG_REVIEW_WEBHOOK_URL needs KARUNG_REVIEW_WEBHOOK_SECRET")
        if not self.reason_codes:
            raise ValueError("at least one reason code is needed")
        return self
