"""Building blocks: strata fast path vs reference, segmentation, label-blind scenes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from karung.training.synth.compose import STREAM_SCENE, label_of
from karung.training.synth.procgarment import procedural_cutout
from karung.training.synth.scene import sample_scene
from karung.training.synth.segment import CutoutError, cut_photo
from karung.training.synth.sources import read_source
from karung.training.synth.strata import layer_bounds, make_atlas, strata_reference, strata_texture


def test_strata_fast_path_matches_reference() -> None:
    rng = np.random.default_rng(0)
    palette = [procedural_cutout(rng, str(i), side=64) for i in range(3)]
    atlas = make_atlas(rng, palette)
    bounds = layer_bounds(rng, 7)
    fast = strata_texture(np.random.default_rng(9), atlas, 41, 33, bounds, bend=False)
    slow = strata_reference(np.random.default_rng(9), atlas, 41, 33, bounds)
    # OpenCV's remap quantises sub-pixel positions to 1/32 px: allow a couple of levels.
    assert np.abs(fast - slow).max() < 3.0
    assert fast.std() > 5.0  # not a flat colour


def test_cut_photo_finds_the_garment(fake_source: Path) -> None:
    photo = next(p for p in read_source(fake_source) if p.image_id == "img-000")
    cut = cut_photo(photo)
    alpha = cut.rgba[..., 3]
    assert 0.3 < (alpha > 127).mean() < 0.95  # the crop is mostly garment
    assert cut.fabric.shape[0] >= 8 and cut.fabric.shape[2] == 3
    assert cut.backdrop is not None


def test_cut_photo_rejects_a_broken_file(fake_source: Path) -> None:
    photo = next(p for p in read_source(fake_source) if p.image_id == "broken")
    with pytest.raises(CutoutError) as err:
        cut_photo(photo)
    assert err.value.code == "bad_photo"


def test_scene_nuisances_do_not_depend_on_the_label() -> None:
    # Scenes come from a label-blind stream: per-label rates of each nuisance must agree.
    rates: dict[str, list[np.ndarray]] = {}
    for index in range(6000):  # enough draws that chance differences stay small
        sc = sample_scene(np.random.default_rng([0, index, STREAM_SCENE]), 320)
        flags = [sc.text_overlay, sc.watermark, bool(sc.screenshot), sc.blur > 0, sc.scale < 0.4]
        flags += [
            bool(sc.person),
            sc.clutter > 0,
            sc.scale > 0.8,
            sc.flash,
        ]  # people and clutter too
        rates.setdefault(label_of(index), []).append(np.array(flags, float))
    means = np.array([np.mean(v, axis=0) for v in rates.values()])
    assert (means.max(axis=0) - means.min(axis=0) < 0.07).all()
