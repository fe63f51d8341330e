"""Contact sheets: a grid of thumbnails per label, for judging realism at a glance."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

from karung.training.synth.text import font


def contact_sheet(paths: Sequence[Path], title: str, cols: int = 8, cell: int = 128) -> Image.Image:
    """Thumbnails of ``paths`` (letterboxed into square cells) under a title bar."""
    rows = max(1, -(-len(paths) // cols))
    bar = 22
    sheet = Image.new("RGB", (cols * cell, rows * cell + bar), (32, 32, 32))
    ImageDraw.Draw(sheet).text((6, 3), title, fill=(240, 240, 240), font=font(1, 14))
    for i, path in enumerate(paths):
        with Image.open(path) as im:
            thumb = im.convert("RGB")
        thumb.thumbnail((cell - 4, cell - 4), Image.Resampling.BILINEAR)
        x = (i % cols) * cell + (cell - thumb.width) // 2
        y = bar + (i // cols) * cell + (cell - thumb.height) // 2
        sheet.paste(thumb, (x, y))
    return sheet
