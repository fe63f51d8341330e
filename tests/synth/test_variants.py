"""Renderer variants: each one renders, names match labels, food sacks are ``other``."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from karung.training.splits import SPLITS
from karung.training.synth.assets import procedural_assets
from karung.training.synth.config import SynthConfig
from karung.training.synth.context import Ctx, Picker
from karung.training.synth.foodsack import food_sacks
from karung.training.synth.garment import on_bed, polybag
from karung.training.synth.lookalikes import wrapped_goods
from karung.training.synth.other import INTERIORS, electronics, interior
from karung.training.synth.pillowpile import STYLES, render_any_bale
from karung.training.synth.runner import generate
from karung.training.synth.sack import SackStyle, render_sacks
from karung.training.synth.scene import sample_scene
from karung.training.synth.variants import VARIANTS
from karung.vision.labels import LABELS

ASSETS = procedural_assets(0, per_split=12)


def _ctx(seed: int, layout: str = "single") -> Ctx:
    rng = np.random.default_rng(seed)
    sc = sample_scene(np.random.default_rng([seed, 1]), 160)
    sc = type(sc)(**{**sc.__dict__, "layout": layout})
    return Ctx(rng, sc, Picker(ASSETS[SPLITS[0]], rng))


def _visible(sprite: np.ndarray) -> None:
    assert sprite.ndim == 3 and sprite.shape[2] == 4
    alpha = sprite[..., 3]
    assert 0.1 < (alpha > 0.5).mean() <= 1.0  # an object, not an empty canvas
    assert sprite[..., :3][alpha > 0.5].std() > 3.0  # not one flat colour


@pytest.mark.parametrize("kind", STYLES)
@pytest.mark.parametrize("layout", ["single", "wall"])
def test_every_bale_variant_renders(kind: str, layout: str) -> None:
    sprite, info = render_any_bale(_ctx(3, layout), 160, kind=kind)
    _visible(sprite)
    assert info["variant"] == f"bale-{kind}" and info["variant"] in VARIANTS["bale"]


@pytest.mark.parametrize(
    ("kind", "top"),
    [
        ("woven", "tied"),
        ("woven", "sewn"),
        ("woven", "open"),
        ("clear", "tied"),
        ("milky", "tied"),
        ("jute", "sewn"),
    ],
)
def test_every_sack_variant_renders(kind: str, top: str) -> None:
    ctx = _ctx(4, "group")
    style = SackStyle(kind, top, (200.0, 200.0, 190.0), False, False, True)
    sprite, info = render_sacks(ctx, 160, style=style)
    _visible(sprite)
    assert info["variant"] in VARIANTS["sack"] and kind in str(info["variant"])


def test_new_negatives_render() -> None:
    for layout in ("single", "group", "wall"):
        _visible(food_sacks(_ctx(5, layout), 160))
    _visible(electronics(_ctx(6), 120)[0])
    for layout in ("single", "group"):
        sprite, kind = wrapped_goods(_ctx(10, layout), 140)
        _visible(sprite)
        assert f"other-{kind}" in VARIANTS["other"]
    _visible(polybag(_ctx(11), 120))
    for kind in INTERIORS:
        img, got = interior(_ctx(7), 160, 120, kind=kind)
        assert got == kind and img.shape == (120, 160, 3) and img.std() > 5.0
    bed = on_bed(_ctx(8), 160, 120)
    assert bed.shape == (120, 160, 3) and bed.std() > 5.0


def test_manifest_variants_belong_to_their_label(tmp_path: Path) -> None:
    generate(SynthConfig(out=tmp_path, n=64, seed=9, source=None, size=96), quiet=True)
    with (tmp_path / "manifest.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    seen: dict[str, set[str]] = {label: set() for label in LABELS}
    for r in rows:
        assert r["variant"] in VARIANTS[r["label"]], r["variant"]
        seen[r["label"]].add(r["variant"])
    assert all(len(v) >= 2 for v in seen.values()), seen  # several variants per label
    # A food sack is never a clothing sack: its variant is only ever drawn for "other".
    food = [r for r in rows if r["variant"] == "other-food-sack"]
    assert all(r["label"] == "other" for r in food)
    assert not any("food" in v for v in VARIANTS["sack"] + VARIANTS["bale"])
