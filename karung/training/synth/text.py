"""Fonts and words for overlays, watermarks, paper labels, posters and screenshots.

Fonts are the DejaVu faces shipped inside matplotlib (a declared dependency), so rendering
needs no system font; Pillow's built-in font is the fallback.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Final

import numpy as np
from PIL import ImageFont

Rng = np.random.Generator
FontT = ImageFont.FreeTypeFont | ImageFont.ImageFont

FACES: Final = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSans-Oblique.ttf",
)
# Marketplace words that carry no label information (the same pool for every class).
WORDS: Final = (
    "ready",
    "stock",
    "cod",
    "promo",
    "murah",
    "ori",
    "original",
    "harga",
    "nego",
    "sale",
    "diskon",
    "gratis",
    "ongkir",
    "best",
    "seller",
    "new",
    "baru",
    "size",
    "warna",
    "kondisi",
    "mulus",
    "second",
    "preloved",
    "kirim",
    "hari",
    "ini",
    "order",
    "chat",
    "admin",
    "toko",
    "shop",
    "official",
    "store",
    "grosir",
    "ecer",
    "stok",
    "terbatas",
    "fast",
    "respon",
    "jual",
)
HANDLES: Final = ("@", "IG: ", "shopee: ", "WA ", "")


@functools.lru_cache(maxsize=1)
def _font_dir() -> Path | None:
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "mpl-data" / "fonts" / "ttf"
    return path if path.is_dir() else None


@functools.lru_cache(maxsize=256)
def font(face: int, size: int) -> FontT:
    """A cached font (``face`` indexes :data:`FACES`); falls back to Pillow's own."""
    folder = _font_dir()
    if folder is not None:
        try:
            return ImageFont.truetype(str(folder / FACES[face % len(FACES)]), size)
        except OSError:
            pass
    return ImageFont.load_default(size)


def random_font(rng: Rng, size: int) -> FontT:
    """A font of a random face at ``size`` px."""
    return font(int(rng.integers(len(FACES))), max(6, int(size)))


def words(rng: Rng, k: int) -> str:
    """``k`` random marketplace words."""
    return " ".join(WORDS[int(i)] for i in rng.integers(0, len(WORDS), k))


def price(rng: Rng) -> str:
    """A price tag: rupiah mostly, sometimes shillings, cedis, naira or dollars."""
    if rng.random() < 0.6:
        return f"Rp {int(rng.integers(10, 990)) * 1000:,}".replace(",", ".")
    cur = str(rng.choice(["KSh", "GHS", "N", "$", "USD", "UGX"]))
    return f"{cur} {int(rng.integers(5, 400)) * 100:,}"


def phone(rng: Rng) -> str:
    """A WhatsApp or phone number in one of several countries' formats."""
    d = [int(v) for v in rng.integers(0, 10, 9)]
    digits = "".join(str(v) for v in d)
    return str(rng.choice([
        f"WA +254 7{digits[:2]} {digits[2:5]} {digits[5:8]}",
        f"WhatsApp +233 2{digits[0]} {digits[1:4]} {digits[4:8]}",
        f"Call/WhatsApp 0{digits[:3]} {digits[3:6]} {digits[6:9]}",
        f"+62 81{digits[0]}-{digits[1:5]}-{digits[5:9]}",
        f"WA 07{digits[:2]} {digits[2:5]} {digits[5:8]}",
    ]))  # fmt: skip


def handle(rng: Rng) -> str:
    """A shop handle or phone number."""
    if rng.random() < 0.25:
        return phone(rng)
    if rng.random() < 0.4:
        return f"WA 08{int(rng.integers(10, 99))}-{int(rng.integers(1000, 9999))}-" + str(
            int(rng.integers(1000, 9999))
        )
    name = "_".join(WORDS[int(i)] for i in rng.integers(0, len(WORDS), 2))
    return HANDLES[int(rng.integers(len(HANDLES)))] + name


def caption(rng: Rng) -> str:
    """One overlay line: words, a price, a handle or a mix, upper-cased half the time."""
    kind = int(rng.integers(4))
    line = [words(rng, int(rng.integers(1, 4))), price(rng), handle(rng)][kind % 3]
    if kind == 3:
        line = f"{words(rng, 2)} {price(rng)}"
    return line.upper() if rng.random() < 0.5 else line
