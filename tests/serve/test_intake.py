"""The intake pool: worker processes give what threads give, typed errors cross the process
boundary, and a dead worker is replaced without failing the items in flight."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from imagegen import encode, textured

from karung.serve.errors import item_error
from karung.serve.intake import LOOP_MAX_BYTES, IntakePool, auto_mode, runs_on_loop
from karung.serve.intake_worker import intake
from karung.vision.decode import decode_image
from karung.vision.errors import CorruptImage, UnsupportedFormat
from karung.vision.hashing import HASH_DECODE_TARGET, compute_hashes, decode_for_hashing
from karung.vision.preprocess import Preprocessing

PRE = Preprocessing(input_size=32)
LIMITS = (1 << 20, 4_000_000)


@pytest.fixture(scope="module")
def process_pool() -> Iterator[IntakePool]:
    pool = IntakePool(2, "process")
    yield pool
    pool.shutdown()


def _jpeg(seed: int) -> bytes:
    return encode(textured(96, 72, seed), "JPEG", quality=90)


def test_worker_result_equals_in_process_result(process_pool: IntakePool) -> None:
    data = _jpeg(1)
    got = asyncio.run(process_pool.run(data, PRE, *LIMITS, with_hashes=True))
    want = intake(data, PRE, *LIMITS, with_hashes=True)
    assert got.sha256 == hashlib.sha256(data).hexdigest() == want.sha256
    assert got.pixels.shape == (1, 32, 32, 3) and got.pixels.dtype == np.uint8
    np.testing.assert_array_equal(got.pixels, want.pixels)
    assert got.hashes == want.hashes
    assert got.hashes is not None and got.hashes.pdq != compute_hashes(textured(96, 72, 2)).pdq


def test_hashes_are_skipped_when_not_asked_for(process_pool: IntakePool) -> None:
    got = asyncio.run(process_pool.run(_jpeg(3), PRE, *LIMITS, with_hashes=False))
    assert got.hashes is None


@pytest.mark.parametrize(
    ("data", "error", "code"),
    [
        (b"<html><body>not an image</body></html>", UnsupportedFormat, "unsupported_format"),
        (_jpeg(4)[:300], CorruptImage, "corrupt_image"),
    ],
)
def test_typed_errors_cross_the_process_boundary(
    process_pool: IntakePool, data: bytes, error: type[Exception], code: str
) -> None:
    with pytest.raises(error) as caught:
        asyncio.run(process_pool.run(data, PRE, *LIMITS, with_hashes=True))
    assert item_error(caught.value)["code"] == code


def test_a_killed_worker_is_replaced_and_the_item_still_scores() -> None:
    async def scenario() -> None:
        pool = IntakePool(1, "process")
        try:
            await pool.warm()
            first = await pool.run(_jpeg(5), PRE, *LIMITS, with_hashes=True)
            old = pool._executor
            pids = list(getattr(old, "_processes", {}))
            assert pids, "the process pool has no live worker to kill"
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(0.5)  # let the executor notice the death
            again = await pool.run(_jpeg(5), PRE, *LIMITS, with_hashes=True)
            assert again.sha256 == first.sha256
            assert again.hashes == first.hashes
            assert pool._executor is not old  # the broken pool was replaced
        finally:
            pool.shutdown()

    asyncio.run(scenario())


def test_thread_mode_gives_the_same_answer() -> None:
    pool = IntakePool(1, "thread")
    try:
        data = _jpeg(6)
        got = asyncio.run(pool.run(data, PRE, *LIMITS, with_hashes=True))
        want = intake(data, PRE, *LIMITS, with_hashes=True)
        np.testing.assert_array_equal(got.pixels, want.pixels)
        assert got.hashes == want.hashes
    finally:
        pool.shutdown()


def test_pool_arguments_are_validated() -> None:
    with pytest.raises(ValueError, match="workers"):
        IntakePool(0)
    with pytest.raises(ValueError, match="mode"):
        IntakePool(1, "fork")  # type: ignore[arg-type]


def test_hashes_match_what_the_bank_computes_for_a_large_photo() -> None:
    """The bank hashes decode_for_hashing's pixels; intake must hash the same ones, not the
    smaller decode it could get away with for the model (that one moves PDQ)."""
    data = encode(textured(1400, 1050, 7), "JPEG", quality=90)
    limits = {"max_bytes": LIMITS[0] * 8, "max_pixels": LIMITS[1]}
    bank_side = compute_hashes(decode_for_hashing(data, **limits))
    model_sized = decode_image(data, target_size=PRE.input_size, **limits)
    got = intake(data, PRE, LIMITS[0] * 8, LIMITS[1], with_hashes=True)
    assert got.hashes == bank_side
    assert compute_hashes(model_sized) != bank_side  # so the first assertion has teeth
    assert got.pixels.shape == (1, 32, 32, 3)


def test_a_model_input_larger_than_the_hash_decode_gets_its_own_decode() -> None:
    big = Preprocessing(input_size=HASH_DECODE_TARGET * 2)
    data = encode(textured(1400, 1050, 8), "JPEG", quality=90)
    got = intake(data, big, LIMITS[0] * 8, LIMITS[1], with_hashes=True)
    direct = decode_image(
        data, max_bytes=LIMITS[0] * 8, max_pixels=LIMITS[1], target_size=big.input_size
    )
    np.testing.assert_array_equal(got.pixels, big.to_pixels([direct]))


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_gone(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


def test_shutdown_leaves_no_worker_behind() -> None:
    pool = IntakePool(2, "process")
    asyncio.run(pool.warm())
    pids = list(getattr(pool._executor, "_processes", {}))
    assert len(pids) == 2 and all(_alive(p) for p in pids)
    pool.shutdown()
    assert _wait_gone(pids, 10) == []


_ORPHAN_SCRIPT = """
import asyncio, sys, time
from karung.serve.intake import LOOP_MAX_BYTES, IntakePool, auto_mode, runs_on_loop
pool = IntakePool(1, "process")
asyncio.run(pool.warm())
print(*pool._executor._processes, flush=True)
time.sleep(600)
"""


def test_workers_exit_when_the_service_is_killed() -> None:
    """SIGKILL gives the service no chance to shut its pool down; the workers notice anyway."""
    proc = subprocess.Popen([sys.executable, "-c", _ORPHAN_SCRIPT], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert pids and all(_alive(p) for p in pids)
    finally:
        proc.kill()
        proc.wait()
    assert _wait_gone(pids, 15) == []


def test_warm_primes_the_hashing_path() -> None:
    """warm() runs a real hash, so PDQ's native entry point is loaded before the first item."""
    from karung.serve.intake_worker import warm
    from karung.vision import pdq_native

    pdq_native.load.cache_clear()
    assert warm() is True
    assert pdq_native.load.cache_info().currsize == 1


def test_loop_mode_takes_small_jpegs_inline_and_sends_the_rest_to_threads() -> None:
    """With its pool shut down, a loop-mode pool still takes a small JPEG in (on the calling
    thread) but not a PNG, which needs the pool."""
    jpeg, png = _jpeg(7), encode(textured(96, 72, 7), "PNG")
    assert runs_on_loop(jpeg) and not runs_on_loop(png)
    assert not runs_on_loop(b"\xff\xd8\xff" + bytes(LOOP_MAX_BYTES))  # too big to be quick
    pool = IntakePool(1, "loop")
    pool.shutdown()
    got = asyncio.run(pool.run(jpeg, PRE, *LIMITS, with_hashes=True))
    want = intake(jpeg, PRE, *LIMITS, with_hashes=True)
    np.testing.assert_array_equal(got.pixels, want.pixels)
    assert got.hashes == want.hashes
    with pytest.raises(RuntimeError, match="shutdown"):
        asyncio.run(pool.run(png, PRE, *LIMITS, with_hashes=True))


def test_auto_mode_uses_the_loop_only_with_a_process_per_core() -> None:
    assert auto_mode(processes=2, cores=2) == "loop"
    assert auto_mode(processes=4, cores=2) == "loop"
    assert auto_mode(processes=1, cores=2) == "thread"
    assert auto_mode(processes=1, cores=1) == "loop"
