"""Micro-batching: images from concurrent requests share one forward pass.

Each request submits its preprocessed images one by one; a single worker task gathers up to
``max_batch`` of them, waiting at most ``max_wait`` seconds after the oldest arrived, and runs
them through the model in one call on a dedicated inference thread (or, with ``inline``, on
the event loop itself: a service process per core then has no second busy thread to hand the
GIL to). A batch only ever holds images for one classifier, so a hot swap never mixes models.

The reference for parity is :meth:`karung.vision.classifier.Classifier.predict_proba`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from karung.serve.errors import ServiceUnavailable
from karung.vision.classifier import Classifier


class BatcherClosed(ServiceUnavailable, RuntimeError):
    """The batcher was stopped while work was pending (``shutting_down``, HTTP 503)."""


@dataclass
class _Job:
    classifier: Classifier
    pixels: np.ndarray  # (1, S, S, 3) uint8, resized (Preprocessing.to_pixels)
    future: asyncio.Future[np.ndarray]
    queued_at: float = field(default_factory=time.monotonic)


def infer(classifier: Classifier, pixels: np.ndarray) -> np.ndarray:
    """Calibrated probabilities of a batch of resized uint8 images ``(N, S, S, 3)``: what
    ``predict_proba`` computes (normalised here, once per batch, off the event loop)."""
    batch = classifier.preprocessing.normalize(pixels)
    return classifier.risk_head.probs(classifier.backend.logits(batch))


class MicroBatcher:
    """Gather single-image requests into batched forward passes.

    Args:
        max_batch: images per forward pass.
        max_wait: seconds the oldest pending image may wait for company.
        on_batch: called with each batch's size (metrics).
        inline: run the model on the event loop instead of the inference thread.
    """

    def __init__(
        self,
        max_batch: int = 64,
        max_wait: float = 0.004,
        on_batch: Callable[[int], None] | None = None,
        inline: bool = False,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.max_batch = max_batch
        self.max_wait = max_wait
        self._on_batch = on_batch
        self.inline = inline
        self._pending: list[_Job] = []
        self._wakeup = asyncio.Event()
        self._full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # One inference thread: the backend parallelises inside a batch with its own threads.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="karung-infer")

    def start(self) -> None:
        """Start the worker task on the running loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="micro-batcher")

    async def stop(self) -> None:
        """Stop the worker; pending submissions fail with :class:`BatcherClosed`."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for job in self._pending:
            if not job.future.done():
                job.future.set_exception(BatcherClosed("the service is shutting down"))
        self._pending.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def probs(self, classifier: Classifier, pixels: np.ndarray) -> np.ndarray:
        """Probabilities (one row, ``len(labels)``) for one resized image ``(1, S, S, 3)``."""
        if self._task is None:
            raise BatcherClosed("the batcher is not running")
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        self._pending.append(_Job(classifier, pixels, future))
        self._wakeup.set()
        if len(self._pending) >= self.max_batch:
            self._full.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            await self._wait_for_company()
            jobs = self._take()
            if jobs:
                await self._dispatch(jobs)

    async def _wait_for_company(self) -> None:
        if not self._pending or len(self._pending) >= self.max_batch:
            return
        remaining = self._pending[0].queued_at + self.max_wait - time.monotonic()
        if remaining <= 0:
            return
        try:
            async with asyncio.timeout(remaining):
                await self._full.wait()
        except TimeoutError:
            pass

    def _take(self) -> list[_Job]:
        """Pop the next batch: the oldest job's classifier, up to ``max_batch`` of its jobs."""
        if not self._pending:
            self._wakeup.clear()
            return []
        model = self._pending[0].classifier
        jobs: list[_Job] = []
        rest: list[_Job] = []
        for job in self._pending:
            if job.classifier is model and len(jobs) < self.max_batch and not job.future.done():
                jobs.append(job)
            elif not job.future.done():
                rest.append(job)
        self._pending = rest
        if len(rest) < self.max_batch:
            self._full.clear()
        if not rest:
            self._wakeup.clear()
        return jobs

    async def _dispatch(self, jobs: list[_Job]) -> None:
        batch = np.concatenate([job.pixels for job in jobs])
        loop = asyncio.get_running_loop()
        try:
            if self.inline:
                probs = infer(jobs[0].classifier, batch)
            else:
                probs = await loop.run_in_executor(self._pool, infer, jobs[0].classifier, batch)
        except Exception as exc:  # the model failed: every waiting request learns why
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        if self._on_batch is not None:
            self._on_batch(len(jobs))
        for job, row in zip(jobs, probs, strict=True):
            if not job.future.done():
                job.future.set_result(row)
