"""Image intake off the event loop: bytes in, content hash + model input + perceptual hashes out.

Decoding, resizing and hashing are CPU work in C libraries. The JPEG decode, the resize and
PDQ (called natively, :mod:`karung.vision.pdq_native`) release the GIL, so the service runs
them in *threads* by default: on the 2-core benchmark that is about 7% more images per second
and 2 ms less CPU per image than worker processes, which pay for moving each photo's bytes
(~0.5 MB) through a pipe. ``mode="process"`` trades that for crash isolation: a decoder crash
on hostile bytes then kills a worker, which is replaced, instead of the service.

:func:`~karung.serve.intake_worker.intake`, the work itself, lives in its own module so that
workers import no more than decoding and hashing need.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Final, Literal, get_args

from karung.serve.errors import ItemError
from karung.serve.intake_worker import Intake, exit_with_parent, intake, warm
from karung.vision.preprocess import Preprocessing

log = logging.getLogger("karung.serve.intake")

IntakeMode = Literal["process", "thread"]
INTAKE_MODES: Final[tuple[IntakeMode, ...]] = get_args(IntakeMode)


class IntakeUnavailable(ItemError):
    """An image worker died twice while this item was in its pool (the item may be retried)."""

    code = "intake_unavailable"


class IntakePool:
    """Runs :func:`intake` on ``workers`` processes (or threads) and replaces a broken pool.

    Args:
        workers: pool size (processes or threads).
        mode: ``"thread"`` (the default) or ``"process"``.
    """

    def __init__(self, workers: int, mode: IntakeMode = "thread") -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if mode not in INTAKE_MODES:
            raise ValueError(f"mode must be one of {INTAKE_MODES}, got {mode!r}")
        self.workers = workers
        self.mode = mode
        self._executor = self._new_executor()

    def _new_executor(self) -> Executor:
        if self.mode == "thread":
            return ThreadPoolExecutor(self.workers, thread_name_prefix="karung-intake")
        # spawn, never fork: the parent runs ONNX Runtime/OpenMP threads, and forking a
        # threaded process can deadlock the child.
        ctx = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(
            self.workers, mp_context=ctx, initializer=exit_with_parent, initargs=(os.getpid(),)
        )

    async def warm(self) -> None:
        """Start every worker now (spawning takes about a second) instead of on first use."""
        loop = asyncio.get_running_loop()
        await asyncio.gather(
            *(loop.run_in_executor(self._executor, warm) for _ in range(self.workers))
        )

    async def run(
        self, data: bytes, pre: Preprocessing, max_bytes: int, max_pixels: int, with_hashes: bool
    ) -> Intake:
        """:func:`intake` on a worker; a broken pool is replaced once and the item retried."""
        args = (data, pre, max_bytes, max_pixels, with_hashes)
        executor = self._executor
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, intake, *args)
        except BrokenProcessPool:
            # A worker died (any item in its pool sees this); retry once on a fresh pool.
            self._replace(executor)
        executor = self._executor
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, intake, *args)
        except BrokenProcessPool as exc:
            self._replace(executor)
            raise IntakeUnavailable("an image worker died twice while this item waited") from exc

    def _replace(self, broken: Executor) -> None:
        """Swap in a fresh pool unless another item already did."""
        if self._executor is broken:
            log.error("an image worker died; starting a new pool")
            broken.shutdown(wait=False, cancel_futures=True)
            self._executor = self._new_executor()

    def shutdown(self) -> None:
        """Stop the workers and wait for them to exit (pending items are cancelled)."""
        self._executor.shutdown(wait=True, cancel_futures=True)
