"""Service configuration, read once from ``KARUNG_*`` environment variables.

Everything downstream receives plain values from this frozen object; nothing else in
``karung.serve`` reads the environment.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from karung.serve.db import data_dir
from karung.serve.fetch import FetchLimits
from karung.serve.intake import IntakeMode
from karung.vision.modeldir import default_model_dir

Backend = Literal["auto", "torch", "onnx", "onnx-int8", "onnx-fp32"]
MB = 1024 * 1024


class Settings(BaseSettings):
    """All knobs of the scoring service (environment prefix ``KARUNG_``)."""

    model_config = SettingsConfigDict(env_prefix="KARUNG_", frozen=True, extra="ignore")

    # Stores and model.
    db: str = Field(default="", description="SQLAlchemy URL (default: SQLite file in data_dir)")
    data_dir: Path = Field(default_factory=data_dir, description="where SQLite and state live")
    model: Path = Field(default_factory=default_model_dir, description="checkpoint file or dir")
    backend: Backend = Field(
        default="auto",
        description="auto: the fastest parity-checked ONNX export on this CPU, else torch",
    )
    admin_key: SecretStr | None = Field(
        default=None,
        description="initial admin API key (otherwise one is generated and printed once)",
    )

    # URL fetching.
    allow_private_networks: bool = Field(
        default=False, description="let the fetcher reach private IPs"
    )
    fetch_allowed_networks: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), description="comma-separated CIDRs exempt from the address filter (e.g. a CDN)"
    )
    fetch_max_bytes: int = Field(default=10 * MB, gt=0)
    fetch_connect_timeout: float = Field(default=3.0, gt=0)
    fetch_read_timeout: float = Field(default=5.0, gt=0)
    fetch_total_timeout: float = Field(default=10.0, gt=0)
    fetch_max_redirects: int = Field(default=3, ge=0, le=10)
    fetch_concurrency: int = Field(default=64, ge=1)
    fetch_key_share: float = Field(
        default=0.25, gt=0, le=1, description="share of the fetch slots one API key may hold"
    )
    user_agent: str = "karung-fetcher/0.1 (+https://github.com/karung)"

    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="comma-separated addresses/CIDRs whose X-Forwarded-For is believed "
        "(default none: the peer's address is the client's)",
    )

    # Scoring.
    max_items: int = Field(default=64, ge=1, le=1024, description="items per /v1/score request")
    max_upload_bytes: int = Field(default=20 * MB, gt=0, description="one uploaded image")
    max_request_bytes: int = Field(default=100 * MB, gt=0, description="one request body")
    max_pixels: int = Field(default=50_000_000, gt=0)
    max_decode_bytes: int = Field(
        default=128 * MB, gt=0, description="peak memory one image's decode may take"
    )
    max_request_decode_pixels: int = Field(
        default=200_000_000, gt=0, description="decoded pixels one request may spend"
    )
    decode_memory_bytes: int = Field(
        default=512 * MB,
        gt=0,
        description="decoding memory in flight per service process (items wait for room)",
    )
    decode_wait_seconds: float = Field(
        default=30.0, gt=0, description="how long an item waits for decoding memory"
    )
    decode_workers: int = Field(
        default=0, ge=0, description="decode/hash workers (0: one per core)"
    )
    intake_mode: IntakeMode | Literal["auto"] = Field(
        default="auto",
        description="where images are decoded and hashed: thread (a pool beside the event "
        "loop), loop (typical photos on the loop itself: for one process per core), process "
        "(crash-isolated workers); auto: loop when workers >= cores, else thread",
    )
    batch_max_size: int = Field(default=8, ge=1, le=256, description="images per forward pass")
    inference_threads: int = Field(
        default=0, ge=0, description="intra-op threads of the model (0: half the cores)"
    )
    batch_max_wait_ms: float = Field(default=4.0, ge=0, description="how long a micro-batch waits")
    block_threshold: float | None = Field(
        default=None, ge=0, le=1, description="override the model's"
    )
    review_threshold: float | None = Field(
        default=None, ge=0, le=1, description="override the model's"
    )
    review_sample_allow: float = Field(
        default=0.01, ge=0, le=1, description="QC share of allow items"
    )
    review_sample_block: float = Field(
        default=0.01, ge=0, le=1, description="QC share of block items"
    )

    # Operations.
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="service processes sharing the port (`karung serve`; one per core for "
        "throughput: each has its own GIL)",
    )
    model_poll_seconds: float = Field(
        default=2.0, gt=0, description="how often workers look for a model swap made elsewhere"
    )
    model_swaps_after: int | None = Field(
        default=None,
        ge=0,
        description="set by `karung serve` for its workers: follow model swaps recorded after "
        "this id (default: only swaps made after this worker started)",
    )
    bank_poll_seconds: float = Field(
        default=2.0, gt=0, description="how often replicas poll the bank"
    )
    auth_cache_seconds: float = Field(
        default=5.0, ge=0, description="how long a verified key is cached"
    )
    log_level: str = "INFO"
    log_json: bool = True

    def fetch_limits(self) -> FetchLimits:
        """The fetcher's limits (SSRF rules, caps, timeouts, slots): the service's, and the
        backfill's, which fetches exactly what the service would."""
        return FetchLimits(
            max_bytes=self.fetch_max_bytes,
            connect_timeout=self.fetch_connect_timeout,
            read_timeout=self.fetch_read_timeout,
            total_timeout=self.fetch_total_timeout,
            max_redirects=self.fetch_max_redirects,
            concurrency=self.fetch_concurrency,
            key_share=self.fetch_key_share,
            allow_private=self.allow_private_networks,
            allowed_networks=self.fetch_allowed_networks,
            user_agent=self.user_agent,
        )

    @field_validator("fetch_allowed_networks", "trusted_proxies", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("fetch_allowed_networks", "trusted_proxies")
    @classmethod
    def _check_networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for cidr in value:
            ipaddress.ip_network(cidr, strict=False)  # raises ValueError on junk
        return value

    @model_validator(mode="after")
    def _default_db(self) -> Settings:
        # Same rule as karung.serve.db.default_db_url, but relative to *this* data_dir.
        if not self.db:
            object.__setattr__(self, "db", f"sqlite:///{self.data_dir / 'karung.db'}")
        return self

    @model_validator(mode="after")
    def _check_thresholds(self) -> Settings:
        if (
            self.block_threshold is not None
            and self.review_threshold is not None
            and self.review_threshold > self.block_threshold
        ):
            raise ValueError("review_threshold must be <= block_threshold")
        return self
