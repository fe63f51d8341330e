"""The micro-batcher against its reference, ``Classifier.predict_proba``."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest
from imagegen import textured
from kit.models import tiny_checkpoint

from karung.errors import KarungError
from karung.serve.batcher import BatcherClosed, MicroBatcher, infer
from karung.serve.errors import item_error
from karung.vision.classifier import Classifier


@pytest.mark.parametrize("inline", [False, True])
def test_parity_with_predict_proba_under_concurrency(inline: bool) -> None:
    clf = Classifier(tiny_checkpoint(3))
    images = [textured(80, 60, seed) for seed in range(10)]
    expected = clf.predict_proba(images)
    sizes: list[int] = []

    async def run() -> list[np.ndarray]:
        batcher = MicroBatcher(max_batch=4, max_wait=0.05, on_batch=sizes.append, inline=inline)
        batcher.start()
        try:
            arrays = [clf.preprocessing.to_pixels([im]) for im in images]
            return list(await asyncio.gather(*(batcher.probs(clf, a) for a in arrays)))
        finally:
            await batcher.stop()

    got = np.stack(asyncio.run(run()))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert sum(sizes) == 10 and max(sizes) <= 4 and len(sizes) < 10  # really batched


def test_batches_never_mix_models() -> None:
    old, new = Classifier(tiny_checkpoint(4)), Classifier(tiny_checkpoint(5))
    image = textured(64, 64, 9)
    seen: list[int] = []

    async def run() -> tuple[list[np.ndarray], list[np.ndarray]]:
        batcher = MicroBatcher(max_batch=64, max_wait=0.05, on_batch=seen.append)
        batcher.start()
        try:
            a_old = old.preprocessing.to_pixels([image])
            a_new = new.preprocessing.to_pixels([image])
            jobs = [
                batcher.probs(old if i % 2 else new, a_old if i % 2 else a_new) for i in range(6)
            ]
            out = await asyncio.gather(*jobs)
            return [out[i] for i in range(1, 6, 2)], [out[i] for i in range(0, 6, 2)]
        finally:
            await batcher.stop()

    from_old, from_new = asyncio.run(run())
    np.testing.assert_allclose(from_old[0], old.predict_proba([image])[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(from_new[0], new.predict_proba([image])[0], rtol=1e-4, atol=1e-5)
    assert not np.allclose(from_old[0], from_new[0])
    assert sorted(seen) == [3, 3]  # one batch per model


def test_infer_matches_predict_proba() -> None:
    clf = Classifier(tiny_checkpoint(6))
    images = [textured(70, 50, s) for s in range(3)]
    batch = clf.preprocessing.to_pixels(images)
    np.testing.assert_allclose(infer(clf, batch), clf.predict_proba(images), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("inline", [False, True])
def test_inline_batches_run_on_the_event_loop_thread(inline: bool) -> None:
    """``inline`` keeps a process-per-core worker on one thread; otherwise the model runs on
    the inference thread."""
    clf = Classifier(tiny_checkpoint(7))
    threads: set[str] = set()
    forward = clf.backend.logits

    def spying(batch: np.ndarray) -> np.ndarray:
        threads.add(threading.current_thread().name)
        return forward(batch)

    clf.backend.logits = spying  # type: ignore[method-assign]

    async def run() -> str:
        batcher = MicroBatcher(max_batch=4, max_wait=0.0, inline=inline)
        batcher.start()
        try:
            await batcher.probs(clf, clf.preprocessing.to_pixels([textured(40, 40, 1)]))
        finally:
            await batcher.stop()
        return threading.current_thread().name

    loop_thread = asyncio.run(run())
    assert (threads == {loop_thread}) is inline
    assert inline or next(iter(threads)).startswith("karung-infer")


def test_a_closed_batcher_reports_a_typed_503_code_per_item() -> None:
    """Work submitted to a stopped batcher fails with ``shutting_down`` (HTTP 503 where it
    reaches the edge), not with ``internal_error``: the platform may retry elsewhere."""
    clf = Classifier(tiny_checkpoint(3))
    pixels = clf.preprocessing.to_pixels([textured(64, 64, 1)])

    async def run() -> BaseException:
        batcher = MicroBatcher(max_batch=4, max_wait=0.01)
        batcher.start()
        await batcher.stop()
        with pytest.raises(BatcherClosed) as info:
            await batcher.probs(clf, pixels)
        return info.value

    exc = asyncio.run(run())
    assert item_error(exc)["code"] == "shutting_down"
    assert isinstance(exc, KarungError) and exc.http_status == 503
