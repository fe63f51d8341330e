"""Image intake beside the event loop: bytes in, content hash + model input + perceptual hashes out.

Decoding, resizing and hashing are CPU work in C libraries that release the GIL. Three modes:

* ``thread`` (one service process): intake runs on a thread pool, so one process keeps every
  core busy. Each image hands the GIL back and forth a dozen times between the pool, the event
  loop and the inference thread, which costs CPU (~2 ms an image on the 2-core benchmark).
* ``loop`` (one service process per core, ``karung serve --workers N``): a typical listing
  photo (a JPEG of at most :data:`LOOP_MAX_BYTES`, ~5-10 ms of work) is taken in on the event
  loop itself, and the model runs there too, so a worker is one busy thread and the cores are
  shared by processes, not threads. Anything that could take longer (other formats, bigger
  files) still goes to the pool, so one slow image never stalls a worker's loop for long.
* ``process``: worker processes, for crash isolation: a decoder crash on hostile bytes kills a
  worker, which is replaced, instead of the service. Each photo's bytes (~0.5 MB) cross a pipe.

``auto`` (the setting's default, :func:`auto_mode`) picks ``loop`` when there are at least as
many service processes as cores, else ``thread``.

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
from karung.vision.decode import DEFAULT_MAX_DECODE_BYTES, is_jpeg
from karung.vision.preprocess import Preprocessing

log = logging.getLogger("karung.serve.intake")

IntakeMode = Literal["process", "thread", "loop"]
INTAKE_MODES: Final[tuple[IntakeMode, ...]] = get_args(IntakeMode)
# A 1600x1200 listing photo is ~0.2-0.6 MB; JPEG decoding at DCT scale costs about its bytes
# (~10 ms a MB here), so up to this size an image is a short, bounded piece of loop time.
LOOP_MAX_BYTES: Final = 2 * 1024 * 1024


def auto_mode(processes: int, cores: int) -> IntakeMode:
    """``loop`` when every core has its own service process, else ``thread``."""
    return "loop" if processes >= cores else "thread"


def runs_on_loop(data: bytes) -> bool:
    """Whether ``loop`` mode takes ``data`` in on the event loop (a JPEG of bounded size)."""
    return len(data) <= LOOP_MAX_BYTES and is_jpeg(data)


class IntakeUnavailable(ItemError, code="intake_unavailable"):
    """An image worker died twice while this item was in its pool (the item may be retried)."""


class IntakePool:
    """Runs :func:`intake` on ``workers`` processes (or threads, or the event loop) and
    replaces a broken pool.

    Args:
        workers: pool size (processes or threads; in ``loop`` mode the threads that take
            the images :func:`runs_on_loop` declines).
        mode: ``"thread"`` (the default), ``"loop"`` or ``"process"``.
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
        if self.mode != "process":
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
        self,
        data: bytes,
        pre: Preprocessing,
        max_bytes: int,
        max_pixels: int,
        with_hashes: bool,
        max_decode_bytes: int = DEFAULT_MAX_DECODE_BYTES,
    ) -> Intake:
        """:func:`intake` on a worker (or inline, see :func:`runs_on_loop`); a broken pool is
        replaced once and the item retried."""
        args = (data, pre, max_bytes, max_pixels, with_hashes, max_decode_bytes)
        if self.mode == "loop" and runs_on_loop(data):
            return intake(*args)
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
