"""The benchmark engines behind ``karung bench index`` and ``karung bench hashes``, on tiny
inputs: they run, and their parity and recall figures mean what they say."""

from __future__ import annotations

from pathlib import Path

from hashing.hashkit import jpeg, scene

from karung.serve.bench.hashes import pick_images, run_benchmark
from karung.serve.bench.index import bench_size


def test_index_bench_agrees_with_brute_force_on_a_small_bank() -> None:
    result = bench_size(3_000, queries=12, brute_queries=12, seed=1)
    assert result["parity"] is True
    assert result["entries"] == 3_000 and result["queries"] == 12
    assert result["mean_hits"] >= 0.9  # nine query images in ten are planted near an entry
    assert 0 < result["cpu_p50_ms"] <= result["cpu_p99_ms"]
    assert 0.0 <= result["huge_page_share"] <= 1.0
    assert result["transparent_huge_pages"] in {"always", "madvise", "never", "unknown"}


def test_hash_bench_finds_mirrored_copies_and_no_unrelated_photo(tmp_path: Path) -> None:
    originals, others = tmp_path / "originals", tmp_path / "others"
    originals.mkdir()
    others.mkdir()
    for seed in range(4):
        (originals / f"o{seed}.jpg").write_bytes(jpeg(scene(seed)))
        (others / f"d{seed}.jpg").write_bytes(jpeg(scene(100 + seed)))
    chosen, distractors = pick_images(
        str(originals), str(others), n=4, distractor_n=4, seed=0, split=None
    )
    assert len(chosen) == 4 and len(distractors) == 4
    report = run_benchmark(chosen, distractors, ["mirror", "border_15_white"], seed=0)
    rows = {row["transform"]: row for row in report["transforms"]}
    assert rows["mirror"]["combined"] == 1.0 and rows["mirror"]["meets_target"] is True
    assert rows["border_15_white"]["combined"] == 1.0
    assert report["false_matches"]["combined_count"] == 0
    assert report["index"]["index_hashes"] > 0
