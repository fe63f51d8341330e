"""Hostile inputs of issue 16, built small in memory (a few KB each; costly only to decode)."""

from __future__ import annotations

import base64
import io
from typing import Any

from PIL import Image


def png(img: Image.Image, **params: Any) -> bytes:
    """``img`` as PNG bytes."""
    out = io.BytesIO()
    img.save(out, "PNG", **params)
    return out.getvalue()


def bomb_16bit(side: int = 7000) -> bytes:
    """A flat 16-bit greyscale PNG: ~100 KB, 49 MP, about a GB the naive way to RGB."""
    return png(Image.new("I;16", (side, side), 1000))


def bomb_palette(side: int = 7000) -> bytes:
    """A palette PNG with transparency: a few KB, 49 MP."""
    return png(Image.new("P", (side, side), 0), transparency=0)


def b64(data: bytes) -> str:
    """Base64 text of ``data``."""
    return base64.b64encode(data).decode()


def item(data: bytes, **extra: Any) -> dict[str, Any]:
    """A /v1/score item carrying ``data`` as base64."""
    return {"image_base64": b64(data), **extra}
