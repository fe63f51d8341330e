"""Negatives that look like a bale at first sight: film-wrapped mattresses, foam blocks and
pillow packs, pillowy and glossy and sometimes banded, but with no clothes inside.

They share the bale renderer's block and film (:mod:`pillow`, :mod:`pillowpile`), so shape,
film and bands alone cannot decide "bale"; only what shows through the film can.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

import numpy as np

from karung.training.synth.context import Ctx
from karung.training.synth.pillow import PillowStyle
from karung.training.synth.pillowpile import one_bale, pile

FOAM: Final = ((235, 235, 240), (200, 215, 235), (240, 220, 200), (230, 200, 210), (250, 240, 170))


def wrapped_goods(ctx: Ctx, long_side: int) -> tuple[np.ndarray, str]:
    """A mattress, foam block or pack of pillows in film, sometimes banded: pillowy, glossy
    and strapped like a bale, but with no clothes inside."""
    rng = ctx.rng
    style = PillowStyle.sample(rng, "film")
    r, g, b = (float(c) for c in FOAM[int(rng.integers(len(FOAM)))])
    banded = rng.random() < 0.5
    style = replace(
        style,
        goods="foam",
        woven=(r, g, b),
        marker=False,
        sticker=style.sticker * 0.6,
        long=style.long if banded else (),
        girth=style.girth if banded else (),
        cross=style.cross if banded else (),
    )
    if ctx.scene.layout == "single":
        return one_bale(ctx, style, long_side), "wrapped-goods"
    return pile(
        ctx, style, int(rng.integers(1, 4)), int(rng.integers(1, 4)), long_side
    ), "wrapped-goods"
