"""Prometheus metrics of one app instance (a private registry, so tests can run many apps)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class Metrics:
    """Every metric the service exports, registered on its own :class:`CollectorRegistry`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "karung_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "karung_http_request_duration_seconds",
            "HTTP request latency",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.decisions = Counter(
            "karung_decisions_total", "scored items by decision", ["decision"], registry=r
        )
        self.item_errors = Counter(
            "karung_item_errors_total", "items that failed, by error code", ["code"], registry=r
        )
        self.fetch_errors = Counter(
            "karung_fetch_errors_total",
            "URL fetches that failed, by error code",
            ["code"],
            registry=r,
        )
        self.batch_items = Histogram(
            "karung_score_request_items",
            "items per /v1/score request",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.inference_batch = Histogram(
            "karung_inference_batch_size",
            "images per model forward pass",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.stage_seconds = Histogram(
            "karung_stage_seconds",
            "time per item in each stage",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.bank_matches = Counter(
            "karung_bank_matches_total", "items that matched the hash bank", registry=r
        )
        self.review_enqueued = Counter(
            "karung_review_enqueued_total", "items sent to moderators", ["reason"], registry=r
        )
        self.index_size = Gauge("karung_bank_index_size", "entries in the hash index", registry=r)
        self.model_loaded = Gauge("karung_model_loaded", "1 when a model is loaded", registry=r)
        self.model_swaps = Counter("karung_model_swaps_total", "hot model swaps", registry=r)
        self.model_rechecked = Gauge(
            "karung_model_fallback_share",
            "share of images the loaded int8 model re-ran on fp32 (close calls) since loading",
            registry=r,
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Record one finished HTTP request (called by the request middleware)."""
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def track_index_size(self, size: Callable[[], float]) -> None:
        """Read the bank's index size at scrape time."""
        self.index_size.set_function(size)

    def track_model_loaded(self, loaded: Callable[[], float]) -> None:
        """Read whether a model is loaded at scrape time."""
        self.model_loaded.set_function(loaded)

    def track_model_rechecked(self, share: Callable[[], float]) -> None:
        """Read the int8 fallback's re-check share at scrape time."""
        self.model_rechecked.set_function(share)

    def render(self) -> bytes:
        """The exposition text of this registry."""
        return generate_latest(self.registry)
