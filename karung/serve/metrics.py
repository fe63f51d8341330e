"""Prometheus metrics of one app instance (a private registry, so tests can run many apps).

Under ``karung serve --workers N`` the parent sets ``PROMETHEUS_MULTIPROC_DIR`` before the
workers start: prometheus_client then keeps every value in a file per process, and a scrape of
``/metrics``, whichever worker answers it, sums the counters and histograms of all workers
(gauges say per metric how workers combine). Gauges read at scrape time are refreshed on the
scrape and by each worker's poll loop, since a scrape can only call into its own worker.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Literal

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)

# How the values of a gauge from several workers combine in multiprocess mode.
GaugeMode = Literal["liveall", "livemin", "livemax", "livesum", "max"]


class Metrics:
    """Every metric the service exports, registered on its own :class:`CollectorRegistry`.

    The families are built in four groups: HTTP, scoring outcomes, live state and drift.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._readers: list[tuple[Gauge, Callable[[], float]]] = []
        # Registration order is the order of the exposition text: keep it stable.
        self._init_http()
        self._init_scoring()
        self._init_live_state()
        self._init_drift()

    def _counter(self, name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
        return Counter(name, doc, labels, registry=self.registry)

    def _histogram(
        self, name: str, doc: str, buckets: Sequence[float], labels: Sequence[str] = ()
    ) -> Histogram:
        return Histogram(name, doc, labels, buckets=buckets, registry=self.registry)

    def _gauge(self, name: str, doc: str, mode: GaugeMode, labels: Sequence[str] = ()) -> Gauge:
        return Gauge(name, doc, labels, registry=self.registry, multiprocess_mode=mode)

    def _init_http(self) -> None:
        self.requests = self._counter(
            "karung_http_requests_total", "HTTP requests", ["method", "route", "status"]
        )
        self.latency = self._histogram(
            "karung_http_request_duration_seconds",
            "HTTP request latency",
            LATENCY_BUCKETS,
            ["route"],
        )

    def _init_scoring(self) -> None:
        self.decisions = self._counter(
            "karung_decisions_total", "scored items by decision", ["decision"]
        )
        self.item_errors = self._counter(
            "karung_item_errors_total", "items that failed, by error code", ["code"]
        )
        self.fetch_errors = self._counter(
            "karung_fetch_errors_total", "URL fetches that failed, by error code", ["code"]
        )
        self.batch_items = self._histogram(
            "karung_score_request_items", "items per /v1/score request", BATCH_BUCKETS
        )
        self.inference_batch = self._histogram(
            "karung_inference_batch_size", "images per model forward pass", BATCH_BUCKETS
        )
        self.stage_seconds = self._histogram(
            "karung_stage_seconds", "time per item in each stage", LATENCY_BUCKETS, ["stage"]
        )
        self.bank_matches = self._counter(
            "karung_bank_matches_total", "items that matched the hash bank"
        )
        self.review_enqueued = self._counter(
            "karung_review_enqueued_total", "items sent to moderators", ["reason"]
        )

    def _init_live_state(self) -> None:
        self.index_size = self._gauge(
            "karung_bank_index_size", "entries in the hash index", "livemax"
        )
        self.model_loaded = self._gauge(
            "karung_model_loaded", "1 when a model is loaded (on every live worker)", "livemin"
        )
        self.model_swaps = self._counter("karung_model_swaps_total", "hot model swaps")
        self.model_rechecked = self._gauge(
            "karung_model_fallback_share",
            "share of images the loaded int8 model re-ran on fp32 (close calls) since loading",
            "liveall",  # one series per worker (pid label)
        )
        self.decode_memory = self._gauge(
            "karung_decode_memory_bytes", "estimated memory of the decodes in flight", "livesum"
        )
        self.fetch_in_flight = self._gauge(
            "karung_fetch_in_flight",
            "URL fetches in flight (or waiting for a slot) per API key",
            "livesum",
            ["key"],
        )

    def _init_drift(self) -> None:
        # Read from the database: every worker sees the same values, hence "max".
        self.risk_share = self._gauge(
            "karung_risk_share",
            "share of scored items per risk bin (today, this week, the model's reference week)",
            "max",
            ["window", "bin"],
        )
        self.review_band_share = self._gauge(
            "karung_review_band_share",
            "share of scored items the model sent to the review band, per window",
            "max",
            ["window"],
        )
        self.risk_psi = self._gauge(
            "karung_risk_psi",
            "population stability index of this week's risk against the reference week",
            "max",
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Record one finished HTTP request (called by the request middleware)."""
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def track_index_size(self, size: Callable[[], float]) -> None:
        """Read the bank's index size at scrape time."""
        self._readers.append((self.index_size, size))

    def track_model_loaded(self, loaded: Callable[[], float]) -> None:
        """Read whether a model is loaded at scrape time."""
        self._readers.append((self.model_loaded, loaded))

    def track_model_rechecked(self, share: Callable[[], float]) -> None:
        """Read the int8 fallback's re-check share at scrape time."""
        self._readers.append((self.model_rechecked, share))

    def set_drift(self, windows: dict[str, tuple[list[float], float]], psi: float) -> None:
        """Set the drift gauges: per window, the bin shares and the review-band share."""
        for window, (shares, band) in windows.items():
            for i, share in enumerate(shares):
                self.risk_share.labels(window, f"{i / len(shares):.2f}").set(share)
            self.review_band_share.labels(window).set(band)
        self.risk_psi.set(psi)

    def refresh(self) -> None:
        """Set the gauges read at scrape time (a plain ``set``, which multiprocess mode keeps)."""
        for gauge, read in self._readers:
            gauge.set(read())

    def render(self) -> bytes:
        """The exposition text: this registry, or every worker's values in multiprocess mode."""
        self.refresh()
        if not multiprocess_dir():
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)
        return generate_latest(merged)

    def close(self) -> None:
        """Drop this worker's live gauges from the merged view (it is shutting down)."""
        if multiprocess_dir():
            multiprocess.mark_process_dead(os.getpid())


def multiprocess_dir() -> str | None:
    """The directory of multiprocess metrics, when ``karung serve --workers`` set one."""
    return os.environ.get(MULTIPROC_ENV) or None
