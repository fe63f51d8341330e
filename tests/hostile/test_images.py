"""Images that are small on the wire and huge to decode (issue 16 points 1 and 6)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hostile.hostkit import bomb_16bit, bomb_palette, item, png
from imagegen import encode, textured
from PIL import Image
from serve.servekit import LiveService, jpeg

from karung.serve.admission import DecodeBusy, DecodeMemory, RequestBudget, RequestTooComplex
from karung.vision.decode import DEFAULT_MAX_DECODE_BYTES, decode_cost, decode_image
from karung.vision.errors import ImageTooComplex

LIMITS = {"max_bytes": 20 * 2**20, "max_pixels": 50_000_000}
# Decode one file in a fresh interpreter and print its peak RSS in MiB (or the error code).
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork and exec.
PEAK_RSS = """
import re, sys
from pathlib import Path
from karung.vision.decode import decode_image
data = open(sys.argv[1], "rb").read()
try:
    decode_image(data, max_bytes=1 << 25, max_pixels=50_000_000, target_size=224)
    outcome = "decoded"
except Exception as exc:
    outcome = getattr(exc, "code", type(exc).__name__)
hwm = re.search(r"VmHWM:\\s+(\\d+)", Path("/proc/self/status").read_text())
print(outcome, int(hwm.group(1)) // 1024)
"""


def _peak(tmp_path: Path, data: bytes) -> tuple[str, int]:
    path = tmp_path / "bomb.png"
    path.write_bytes(data)
    out = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, str(path)], capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0], int(out[1])


@pytest.mark.parametrize("make", [bomb_16bit, bomb_palette], ids=["16bit", "palette+alpha"])
def test_bombs_are_refused_before_any_pixel_is_decoded(tmp_path: Path, make: Any) -> None:
    outcome, peak_mib = _peak(tmp_path, make())
    assert outcome == "image_too_complex"
    assert peak_mib < 200  # the interpreter and its imports; the decode would add ~1 GB


@pytest.mark.parametrize(
    ("mode", "params"),
    [
        ("1", {}),
        ("L", {}),
        ("P", {}),
        ("P", {"transparency": 0}),
        ("LA", {}),
        ("RGBA", {}),
        ("I;16", {}),
        ("RGB", {}),
    ],
)
def test_every_mode_is_reduced_under_the_budget(mode: str, params: dict[str, Any]) -> None:
    data = png(Image.new(mode, (2400, 1800)), **params)
    cost = decode_cost(data, target_size=224, **LIMITS)
    assert cost.peak_bytes < DEFAULT_MAX_DECODE_BYTES
    img = decode_image(data, target_size=224, **LIMITS)
    assert img.mode == "RGB" and 224 <= min(img.size) < 450  # reduced, not full size


def test_budget_is_a_parameter() -> None:
    data = png(Image.new("RGBA", (1200, 1200)))
    with pytest.raises(ImageTooComplex):
        decode_image(data, target_size=224, max_decode_bytes=2**20, **LIMITS)


def test_strip_image_without_reduction_is_costed_at_full_size() -> None:
    """200x40000 cannot be reduced towards 224 a side: every conversion happens at full size."""
    data = png(Image.new("RGBA", (200, 40_000)))
    assert decode_cost(data, target_size=224, **LIMITS).peak_bytes > 8 * 200 * 40_000


def test_hostile_items_get_typed_errors_and_the_rest_scores(service: LiveService) -> None:
    items = [item(bomb_16bit()), item(jpeg(1)), item(bomb_palette()), item(jpeg(2))]
    with service.client() as client:
        r = client.post("/v1/score", json={"items": items})
    assert r.status_code == 200
    got = [(i["status"], (i["error"] or {}).get("code")) for i in r.json()["items"]]
    assert got == [
        ("error", "image_too_complex"),
        ("ok", None),
        ("error", "image_too_complex"),
        ("ok", None),
    ]


def test_request_pixel_budget(make_service: Any) -> None:
    # Each 64x48 JPEG decodes to 3,072 pixels: a budget of 10,000 admits three of five.
    live = make_service(max_request_decode_pixels=10_000)
    with live.client() as client:
        r = client.post("/v1/score", json={"items": [item(jpeg(i)) for i in range(5)]})
    codes = sorted((i["error"] or {}).get("code", "ok") for i in r.json()["items"])
    assert codes == ["ok", "ok", "ok", "request_too_complex", "request_too_complex"]


def test_request_budget_spends_nothing_on_refusal() -> None:
    budget = RequestBudget(100)
    budget.take(60)
    with pytest.raises(RequestTooComplex):
        budget.take(50)
    budget.take(40)
    assert budget.left == 0


def test_decoding_memory_applies_backpressure_and_small_items_pass() -> None:
    async def scenario() -> list[str]:
        memory = DecodeMemory(100)
        order: list[str] = []
        async with memory.reserve(80, timeout=1.0):
            order.append("big in")
            async with memory.reserve(15, timeout=0.1):  # fits beside it: no waiting
                order.append("small in")
            with pytest.raises(DecodeBusy):
                async with memory.reserve(50, timeout=0.1):
                    order.append("never")
            waiter = asyncio.create_task(_enter(memory, 50, order))
            await asyncio.sleep(0.05)
            order.append("big out")
        await waiter
        assert memory.in_use == 0
        return order

    assert asyncio.run(scenario()) == ["big in", "small in", "big out", "waiter in"]


async def _enter(memory: DecodeMemory, nbytes: int, order: list[str]) -> None:
    async with memory.reserve(nbytes, timeout=5.0):
        order.append("waiter in")


@pytest.mark.parametrize("size", [(1, 1), (2, 20_000), (20_000, 2)])
def test_degenerate_images_are_scored_and_banked(
    service: LiveService, size: tuple[int, int]
) -> None:
    data = encode(textured(*size), "PNG")
    with service.client() as client:
        scored = client.post("/v1/score", json={"items": [item(data)]}).json()["items"][0]
        files = {"file": ("x.png", data, "image/png")}
        banked = client.post("/v1/bank/entries/upload", files=files, data={"bank": "tiny"})
        again = client.post("/v1/score", json={"items": [item(data)]}).json()["items"][0]
    assert scored["status"] == "ok" and scored["risk"] is not None
    assert banked.status_code == 201, banked.text
    assert again["decision"] == "block" and again["matches"][0]["kind"] == "sha256"
    if size == (1, 1):  # nothing to hash perceptually, and the answer says so
        assert scored["notes"] and "perceptual hash" in scored["notes"][0]
    else:  # a strip keeps 2 px across and is hashed
        assert scored["notes"] == []
