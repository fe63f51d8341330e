"""The Ray actor of a backfill: loads the model and the bank once, then scores batches.

Ray Data keeps a pool of these actors alive for the whole run. The model bundle and the bank
snapshot arrive as object references (:class:`Shipped`), so they cross the network once per
node, and each actor pays the model load and index build once, not per batch.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from karung.batch.schema import to_table
from karung.batch.scorer import BatchScorer, ScorerOptions


@dataclass(frozen=True)
class Shipped:
    """What every actor receives: references to the model and the bank, and the options."""

    model: Any  # ray.ObjectRef[ModelBundle]
    bank: Any  # ray.ObjectRef[BankSnapshot]
    options: ScorerOptions
    backend: str


class ScoreActor:
    """A Ray Data callable class: ``Arrow batch of input rows -> Arrow batch of results``."""

    def __init__(self, shipped: Shipped) -> None:
        import ray

        bundle, snapshot = ray.get([shipped.model, shipped.bank])
        self.pid = os.getpid()
        # One intra-op thread: Ray gives each actor one CPU, parallelism comes from the pool.
        classifier = bundle.load(shipped.backend, threads=1)
        self.scorer = BatchScorer(classifier, snapshot.matcher(), shipped.options)

    def __call__(self, batch: pa.Table) -> pa.Table:
        """Score one batch of input rows."""
        started = time.process_time()  # this process, every thread (ONNX Runtime's included)
        rows = self.scorer.score_rows(batch.to_pylist())
        if rows:
            rows[0]["_cpu_s"] = time.process_time() - started
        return to_table(rows)
