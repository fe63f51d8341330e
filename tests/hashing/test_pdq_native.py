"""The GIL-free PDQ call against pdqhash's binding (the reference): same bits, same quality."""

from __future__ import annotations

import threading
import time

import numpy as np
import pdqhash
import pytest
from hashing.hashkit import scene
from PIL import Image

from karung.vision import pdq_native
from karung.vision.hashing import compute_hashes, reference_pdq_dihedral


def _binding(pixels: np.ndarray) -> tuple[list[str], int]:
    vectors, quality = pdqhash.compute_dihedral(pixels)
    return [np.packbits(v.astype(bool)).tobytes().hex() for v in vectors], int(quality)


def _native(pixels: np.ndarray) -> tuple[list[str], int]:
    words, quality = pdq_native.load()(pixels)
    return [w.hex() for w in words], quality


def _cases() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    noise = [
        rng.integers(0, 256, (int(h), int(w), 3), dtype=np.uint8)
        for h, w in rng.integers(2, 700, (12, 2))
    ]
    scenes = [np.asarray(scene(seed, *size)) for seed, size in enumerate([(320, 240), (64, 900)])]
    flat = [np.full((100, 80, 3), 128, np.uint8)]  # quality 0: featureless
    return noise + scenes + flat


@pytest.mark.parametrize("index", range(15))
def test_native_equals_binding_bit_for_bit(index: int) -> None:
    pixels = np.ascontiguousarray(_cases()[index])
    assert _native(pixels) == _binding(pixels)


def test_pdq_dihedral_matches_binding_whichever_path(monkeypatch: pytest.MonkeyPatch) -> None:
    img = scene(3)
    fast = reference_pdq_dihedral(img)

    def unavailable() -> pdq_native.DihedralFn:
        raise pdq_native.NativePdqUnavailable("simulated: symbol not exported")

    monkeypatch.setattr(pdq_native, "load", unavailable)
    slow = reference_pdq_dihedral(img)
    assert fast == slow
    assert [h.hex() for h in slow[0]] == _binding(np.asarray(img))[0]


def test_compute_hashes_uses_native_result_for_trimmed_and_plain() -> None:
    inner = scene(5, 200, 150)
    framed = Image.new("RGB", (260, 210), (255, 255, 255))
    framed.paste(inner, (30, 30))
    hashes = compute_hashes(framed)
    assert hashes.trimmed is not None and hashes.trimmed.reference is not None
    assert hashes.reference is not None
    assert hashes.trimmed.reference[0][0].hex() == _binding(np.asarray(inner))[0][0]
    assert hashes.reference[0][0].hex() == _binding(np.asarray(framed))[0][0]


def test_rejects_arrays_that_are_not_rgb_bytes() -> None:
    native = pdq_native.load()
    with pytest.raises(ValueError, match="uint8"):
        native(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError, match="H, W, 3"):
        native(np.zeros((10, 10), np.uint8))


def test_missing_symbol_raises_typed_error(monkeypatch: pytest.MonkeyPatch) -> None:
    pdq_native.load.cache_clear()
    monkeypatch.setattr(pdq_native, "SYMBOL", "no_such_symbol")
    try:
        with pytest.raises(pdq_native.NativePdqUnavailable):
            pdq_native.load()
    finally:
        pdq_native.load.cache_clear()


def _longest_stall(hash_fn: object, pixels: np.ndarray) -> float:
    """The longest gap (seconds) a pure-Python thread sees between two of its loop steps
    while ``hash_fn(pixels)`` runs on the calling thread."""
    done = threading.Event()
    gaps: list[float] = []

    def ticker() -> None:
        last, worst = time.perf_counter(), 0.0
        while not done.is_set():
            now = time.perf_counter()
            worst, last = max(worst, now - last), now
        gaps.append(worst)

    worker = threading.Thread(target=ticker)
    worker.start()
    time.sleep(0.01)
    hash_fn(pixels)  # type: ignore[operator]
    done.set()
    worker.join()
    return gaps[0]


def test_native_call_does_not_stall_other_threads() -> None:
    """The binding holds the GIL through its C++ work, stalling every other thread for the
    whole hash; the native call releases it, so another thread only waits for NumPy's steps."""
    pixels = np.ascontiguousarray(
        np.random.default_rng(0).integers(0, 256, (2400, 3200, 3), dtype=np.uint8)
    )
    native = pdq_native.load()
    native(pixels)  # warm both paths (page faults, first-call costs)
    pdqhash.compute_dihedral(pixels)
    held = _longest_stall(pdqhash.compute_dihedral, pixels)
    released = _longest_stall(native, pixels)
    assert released < held / 2, f"native stall {released:.4f}s vs binding {held:.4f}s"
